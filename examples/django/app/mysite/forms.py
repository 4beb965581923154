"""Forms of the example project."""

from django import forms


class NameForm(forms.Form):
    name = forms.CharField(max_length=40, label="Your name")


class UploadForm(forms.Form):
    file = forms.FileField(label="A file of any size")

"""The chat page: the messages themselves travel over the WebSocket."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render


@login_required
def room(request):
    return render(request, "chat/room.html")

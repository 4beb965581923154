"""The ``wsgid-options`` directive: the option reference, generated.

wsgid's options live in one table, :data:`wsgid.options.SETTINGS`; this
directive renders it, grouped by section, so that the reference (HTML and
man page alike) is never written twice::

    .. wsgid-options::

    .. wsgid-options::
       :no-index:        (a second copy: no index entries, no link targets)
       :summary:         (start with a one-line-per-option table)

Each option shows its flags (and the flag that turns a switch off), its
wsgid.json key, its default and its help text.
"""

import json

import sphinx
from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

# The option directive's flag for "no index entry, no link target": spelt
# :no-index: since Sphinx 7.2, :noindex: before.
NO_INDEX = "no-index" if sphinx.version_info >= (7, 2) else "noindex"

def settings():
    from wsgid import options

    return list(options.SETTINGS)


def sections(table):
    """``[(section, [settings])]`` in the order sections first appear."""
    order, groups = [], {}
    for setting in table:
        if setting.section not in groups:
            order.append(setting.section)
            groups[setting.section] = []
        groups[setting.section].append(setting)
    return [(name, groups[name]) for name in order]


def signature(setting):
    """The flags as the ``option`` directive wants them: ``--recv SPEC`` or
    ``--debug, --no-debug``."""
    meta = " " + setting.meta if setting.meta else ""
    negation = [setting.negation] if setting.negation else []
    return ", ".join([flag + meta for flag in setting.flags] + negation)


def json_key(setting):
    if not setting.flags:
        return "``\"%s\"`` (wsgid.json only: there is no command-line flag)" % setting.name
    if setting.name == "app_path":
        return "none (the app folder is where wsgid.json is read from)"
    if not setting.saved:
        return "none: command line only, never saved by ``wsgid config``"
    return "``\"%s\"``" % setting.name


def default(setting):
    value = setting.default
    if value is None or value == [] or value == "":
        return "none"
    if value == {}:
        return "``{}``"
    if setting.name == "app_path" and value == ".":
        return "``.``, the current directory"
    if isinstance(value, str):
        return "``%s``" % value
    return "``%s``" % json.dumps(value)


def value_text(setting):
    """What the value is, from the option kinds of :data:`wsgid.optionkinds.KINDS`;
    None for a plain string (the metavar says it all)."""
    from wsgid import optionkinds

    kind = optionkinds.KINDS[setting.kind]
    if setting.choices:
        return "one of " + ", ".join("``%s``" % c for c in setting.choices)
    if kind.doc and kind.action == "append" and setting.flags:
        return kind.doc + "; the flag may be repeated"
    return kind.doc


def escape(text):
    """Help text is plain text: keep reST from reading ``*`` or a trailing
    ``_`` as markup."""
    for char in ("\\", "*", "`", "|"):
        text = text.replace(char, "\\" + char)
    return text


def option_lines(setting, no_index):
    body = [escape(setting.help), "", "| *wsgid.json key:* %s" % json_key(setting)]
    value = value_text(setting)
    if value:
        body.append("| *value:* %s" % value)
    body.append("| *default:* %s" % default(setting))
    if not setting.flags:
        head = [".. describe:: %s" % setting.name, ""]
    else:
        head = [".. option:: %s" % signature(setting)]
        if no_index:
            head.append("   :%s:" % NO_INDEX)
        head.append("")
    return head + ["   " + line if line else "" for line in body] + [""]


def summary_lines(table):
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 40 25 35", "",
             "   * - option", "     - wsgid.json key", "     - default"]
    for setting in table:
        if setting.flags:  # links to the entries below
            flags = ", ".join(":option:`%s <wsgid %s>`" % (flag, flag) for flag in
                              list(setting.flags) + ([setting.negation]
                                                     if setting.negation else []))
            if setting.meta:
                flags += " *%s*" % setting.meta
        else:
            flags = "(wsgid.json only)"
        key = "``%s``" % setting.name if setting.flags and setting.saved \
            and setting.name != "app_path" else ("``%s``" % setting.name
                                                 if not setting.flags else "--")
        lines += ["   * - %s" % flags, "     - %s" % key, "     - %s" % default(setting)]
    return lines + [""]


def rst_lines(table, no_index=False, summary=False):
    """The generated reStructuredText, one section per option section."""
    lines = [".. program:: wsgid", ""]
    if summary:
        lines += summary_lines(table)
    for name, group in sections(table):
        lines += [name, "-" * max(len(name), 3), ""]
        for setting in group:
            lines += option_lines(setting, no_index)
    return lines


class WsgidOptions(SphinxDirective):
    has_content = False
    option_spec = {
        "no-index": directives.flag,
        "noindex": directives.flag,
        "summary": directives.flag,
    }

    def run(self):
        no_index = "no-index" in self.options or "noindex" in self.options
        lines = rst_lines(settings(), no_index, "summary" in self.options)
        source = "<wsgid.options.SETTINGS>"
        content = StringList(lines, source=source)
        self.env.note_dependency(__file__)
        import wsgid.options

        self.env.note_dependency(wsgid.options.__file__)
        holder = nodes.section()
        holder.document = self.state.document
        nested_parse_with_titles(self.state, content, holder)
        return holder.children


def setup(app):
    app.add_directive("wsgid-options", WsgidOptions)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

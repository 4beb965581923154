"""``wsgid config``: merge the options given on the command line into
``<app>/wsgid.json`` (real JSON booleans, atomic write). Without any option
to save, print the current (checked) content of wsgid.json."""

import json

from wsgid import options as opts
from wsgid.commands import enter_app_folder


def run(given):
    app_path = enter_app_folder(given)
    values = {name: value for name, value in given.items()
              if name != "app_path" and opts.BY_NAME[name].saved}
    if not values:
        print(json.dumps(opts.saved_form(opts.read_json(app_path)), indent=2, sort_keys=True))
        return 0
    opts.write_json(app_path, values)
    print("Saved %s to %s" % (", ".join(sorted(values)), opts.json_path(app_path)))
    return 0

"""One module per wsgid command, each with ``run(given) -> exit status``;
``given`` holds the options given on the command line."""

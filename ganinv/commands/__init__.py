"""One module per console script (`ganinv-<name>` is `ganinv.commands.<name>:main`): parse the command line, call
the library (`ganinv.workflows` and below), print. No command imports another."""

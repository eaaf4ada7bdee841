"""The ``alertd`` command's subcommands, one module per domain; ``alertd.cli`` assembles
them into one parser."""

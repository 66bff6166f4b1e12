"""One module per `rawdqn` subcommand; each defines add_command(subparsers)."""

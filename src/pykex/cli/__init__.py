"""The ``pykex`` command.

:mod:`.main` builds the argument parser from :data:`.main.SUBCOMMANDS`: one
module of this package per subcommand, each defining ``HELP`` (one line),
``configure(parser)`` and ``run(args) -> int``. Adding a subcommand means
adding its module and its name to that tuple.
"""

"""One module per `dm-emulator` sub-command, imported only when that command runs.

Contract (see emulator/cli.py COMMANDS): the module exposes `run(args: argparse.Namespace) -> int | None`
(`tree` exposes `export` and `import_tree`). Arguments are already parsed and checked by cli.py;
raise an EmulatorError subclass for anything the user can fix (cli.py prints it as
`dm-emulator <command>: <message>` and exits 1); return a non-zero code only after printing why.
"""

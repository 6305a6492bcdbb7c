# Sourced first, with "$@", by the scripts that take no argument (they define `usage`):
# `--help` prints the usage, anything else is refused with status 2; both touch nothing.
case "${1:-}" in
  "") ;;
  -h | --help) usage; exit 0 ;;
  *) echo "error: unknown argument $1" >&2; usage >&2; exit 2 ;;
esac

"""``python -m interp_widget.server``: print the panel protocol's JSON Schema (read by labextension/scripts/gen-panel-types.mjs)."""

import json
import sys

from interp_widget.server.messages import wire_schema

sys.stdout.write(json.dumps(wire_schema(), indent=2) + "\n")

"""moto's server, serving one request at a time.

The stock `moto_server` runs requests on parallel threads without locking, so its DynamoDB
`TransactWriteItems` is not isolated: two transactions conditioned on the same stream version can
both succeed, which real DynamoDB (serializable transactions) never allows. Serving requests one
at a time restores the isolation the event log's optimistic concurrency relies on.

Usage: python moto_serial.py HOST PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    run_simple(host, port, DomainDispatcherApplication(create_backend_app), threaded=False)


if __name__ == "__main__":
    main()

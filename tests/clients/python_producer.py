"""A producer with only Celery installed (no trainlog): sends one job by name, prints the outcome.

Usage: python python_producer.py BROKER_URL JOB_NAME ARGS_JSON QUEUE TIMEOUT_S
Prints one JSON line: {"status": "SUCCESS", "result": ...} or {"status": "FAILURE", "error": ...}.
"""

import json
import sys

from celery import Celery


def main() -> None:
    broker, name, args, queue, timeout = sys.argv[1:]
    app = Celery(broker=broker, backend=broker)
    result = app.send_task(name, args=json.loads(args), queue=queue)
    try:
        value = result.get(timeout=float(timeout))
    except Exception as error:  # what the job raised, rebuilt by Celery without trainlog
        outcome = {
            "status": result.state,
            "error": {
                "type": type(error).__name__,
                "module": type(error).__module__,
                "message": str(error),
                "isException": isinstance(error, Exception),
            },
        }
    else:
        outcome = {"status": result.state, "result": value}
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()

"""``python -m tests.shopify_sync.double --products 50000``: the double alone; prints its port, serves until killed."""
import argparse
import os
import sys
import threading

from .server import AdminDouble
from .shop import Shop, catalogue


def main() -> None:
    parser = argparse.ArgumentParser(description="The Shopify Admin API double")
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--variants", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=os.environ.get("SHOPIFY_ACCESS_TOKEN", "shpat_test_token"))
    args = parser.parse_args()
    double = AdminDouble(catalogue(Shop(), args.products, variants=args.variants), token=args.token).start(args.port)
    print(double.server.server_address[1], flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()

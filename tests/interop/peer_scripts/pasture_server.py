"""Run a fediverse-pasture server on 127.0.0.1 only (its own CLIs bind 0.0.0.0).

Runs inside the pasture peer venv, in the peer's working directory (data.toml with the test
actors' keys and the seeded bovine_jsonld_cache.sqlite live there):

  python pasture_server.py verify_actor --port P   # the six verify_actor test actors
  python pasture_server.py one_actor --port P      # acct:actor@127.0.0.1:P, inbox log at /

Both build the package's own apps (fediverse_pasture.verify_actor.build_app and
fediverse_pasture.server.one_actor_app.app_for_data_provider), unchanged.
"""

import argparse
import os
import sys

# The peer runs from its working directory: keep files there from shadowing modules.
sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["verify_actor", "one_actor"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    domain = f"127.0.0.1:{args.port}"

    if args.kind == "verify_actor":
        from fediverse_pasture.verify_actor import build_app

        app = build_app(False, domain, False, args.timeout)
    else:
        from fediverse_pasture.data_provider import DataProvider
        from fediverse_pasture.server.image_provider_blueprint import image_provider_blueprint
        from fediverse_pasture.server.one_actor_app import app_for_data_provider

        app = app_for_data_provider(DataProvider.generate_and_load(False))
        app.register_blueprint(image_provider_blueprint, url_prefix="/images")

    app.run(host="127.0.0.1", port=args.port, use_reloader=False)


if __name__ == "__main__":
    main()

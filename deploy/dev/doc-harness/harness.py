# Appended to the Python verifier of docs/webhooks.md: harness.py REQUEST_JSON SECRET
import json, sys

request = json.load(open(sys.argv[1], encoding="utf-8"))
secret = sys.argv[2]
headers = {k.lower(): v for k, v in request["headers"].items()}
body = request["body"].encode()
wrong = "whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZw=="
print(f"genuine={verify(secret, headers, body)} tampered={verify(secret, headers, body + b' ')} "
      f"wrong_secret={verify(wrong, headers, body)} stale={verify(secret, headers, body, tolerance=-1)}".lower())

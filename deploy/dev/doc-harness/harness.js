// Runs the Node.js verifier of docs/webhooks.md: node harness.js VERIFIER REQUEST_JSON SECRET
const fs = require("node:fs");
const { verify } = require(process.argv[2]);
const request = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const secret = process.argv[4];
const headers = Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), v]));
const body = Buffer.from(request.body, "utf8");
const wrong = "whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZw==";
console.log(`genuine=${verify(secret, headers, body)} tampered=${verify(secret, headers, Buffer.concat([body, Buffer.from(" ")]))} ` +
  `wrong_secret=${verify(wrong, headers, body)} stale=${verify(secret, headers, body, -1)}`);

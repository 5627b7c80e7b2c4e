// Compiled with the Swift verifier of docs/webhooks.md: verify REQUEST_JSON SECRET
import Foundation

struct Request: Decodable {
    let headers: [String: String]
    let body: String
}

let arguments = CommandLine.arguments
let request = try JSONDecoder().decode(Request.self, from: Data(contentsOf: URL(filePath: arguments[1])))
let secret = arguments[2]
let headers = Dictionary(uniqueKeysWithValues: request.headers.map { ($0.key.lowercased(), $0.value) })
let body = Data(request.body.utf8)
let wrong = "whsec_" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZw=="
print("genuine=\(verify(secret: secret, headers: headers, body: body)) tampered=\(verify(secret: secret, headers: headers, body: body + Data(" ".utf8))) "
    + "wrong_secret=\(verify(secret: wrong, headers: headers, body: body)) stale=\(verify(secret: secret, headers: headers, body: body, tolerance: -1))")

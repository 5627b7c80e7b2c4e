import AlertdSupport
import CAlertdShims
import CCurl
import Foundation

/// `alertd health`: asks a running alertd's status server whether it is ready, for exec probes
/// and scripts. One libcurl GET, on a thread of its own.
public enum StatusProbe {
    public struct Answer: Sendable, Equatable {
        public var status: Int
        public var body: String
    }

    /// The most of an answer's body that is read.
    static let bodyLimit = 1_048_576

    /// GETs `path` from the status server at `address` (every interface: asked on loopback).
    public static func get(_ path: String, from address: StatusAddress, timeout: Duration) async throws -> Answer {
        let worker = BlockingWorker(name: "alertd-probe")
        defer { worker.shutdown() }
        return try await worker.run { try getBlocking(path, from: address.local, timeout: timeout) }
    }

    /// What the write callback collects.
    private final class Body {
        var bytes: [UInt8] = []
    }

    static func getBlocking(_ path: String, from address: StatusAddress, timeout: Duration) throws -> Answer {
        let url = "http://\(address)\(path)"
        func failure(_ what: String) -> AlertdError {
            AlertdError(.notFound, "No answer from alertd's status server at \(url): \(what).", hint: "Is alertd run going, with --http-address or ALERTD_HTTP_ADDRESS set to this address?")
        }
        _ = alertd_curl_global_init_once()
        guard let handle = curl_easy_init() else { throw failure("libcurl could not create a handle") }
        defer { curl_easy_cleanup(handle) }
        var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let body = Body()
        let performed: CURLcode = try errorBuffer.withUnsafeMutableBufferPointer { errors in
            func check(_ code: CURLcode, _ option: String) throws {
                guard code == CURLE_OK else { throw failure("libcurl refused \(option) (\(String(cString: curl_easy_strerror(code))))") }
            }
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_URL, url), "CURLOPT_URL")
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http"), "CURLOPT_PROTOCOLS_STR")
            // The status server is local: no proxy from the environment.
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_PROXY, ""), "CURLOPT_PROXY")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_NOSIGNAL, 1), "CURLOPT_NOSIGNAL")
            try check(alertd_curl_easy_setopt_long(handle, CURLOPT_TIMEOUT_MS, max(1, Int(timeout.seconds * 1000))), "CURLOPT_TIMEOUT_MS")
            try check(alertd_curl_easy_setopt_string(handle, CURLOPT_USERAGENT, "alertd-health"), "CURLOPT_USERAGENT")
            try check(alertd_curl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errors.baseAddress), "CURLOPT_ERRORBUFFER")
            try check(alertd_curl_easy_setopt_pointer(handle, CURLOPT_WRITEDATA, Unmanaged.passUnretained(body).toOpaque()), "CURLOPT_WRITEDATA")
            try check(alertd_curl_easy_setopt_write_function(handle) { data, size, count, context in
                guard let data, let context else { return 0 }
                let body = Unmanaged<Body>.fromOpaque(context).takeUnretainedValue()
                // More than the limit ends the transfer: a status answer is small.
                guard body.bytes.count + size * count <= StatusProbe.bodyLimit else { return 0 }
                body.bytes += UnsafeRawBufferPointer(start: data, count: size * count)
                return size * count
            }, "CURLOPT_WRITEFUNCTION")
            return curl_easy_perform(handle)
        }
        withExtendedLifetime(body) {}
        guard performed == CURLE_OK else {
            var detail = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if detail.isEmpty { detail = String(cString: curl_easy_strerror(performed)) }
            var systemError = 0
            alertd_curl_easy_getinfo_long(handle, CURLINFO_OS_ERRNO, &systemError)
            if systemError != 0 { detail += " (\(String(cString: strerror(Int32(systemError)))))" }
            throw failure(detail)
        }
        var status = 0
        alertd_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return Answer(status: status, body: String(decoding: body.bytes, as: UTF8.self))
    }
}

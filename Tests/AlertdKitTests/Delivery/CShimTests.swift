import CAlertdShims
import CCurl
import CESMTP
import Testing

/// The C shim's wrappers reach the real libraries.
@Suite struct CShimTests {
    @Test func curlOptionsAndInfoGoThroughTheTypedWrappers() throws {
        let handle = try #require(curl_easy_init())
        defer { curl_easy_cleanup(handle) }
        #expect(alertd_curl_easy_setopt_string(handle, CURLOPT_URL, "http://127.0.0.1:9/alertd") == CURLE_OK)
        #expect(alertd_curl_easy_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, 2_000) == CURLE_OK)
        #expect(alertd_curl_easy_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0) == CURLE_OK)
        // An option that does not exist is refused, so the wrapper really reaches libcurl.
        #expect(alertd_curl_easy_setopt_long(handle, CURLoption(rawValue: 99_999), 1) != CURLE_OK)
        var url: UnsafePointer<CChar>?
        #expect(alertd_curl_easy_getinfo_string(handle, CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK)
        #expect(url.map { String(cString: $0) } == "http://127.0.0.1:9/alertd")
        var code: Int = -1
        #expect(alertd_curl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK)
        #expect(code == 0)
    }

    @Test func esmtpHeadersAndBodiesGoThroughTheWrappers() throws {
        let session = try #require(smtp_create_session())
        defer { smtp_destroy_session(session) }
        let message = try #require(smtp_add_message(session))
        #expect(alertd_smtp_set_header_string(message, "Subject", "Sync failed") == 1)
        #expect(alertd_smtp_set_header_address(message, "From", "alertd", "alertd@example.com") == 1)
        #expect(alertd_smtp_set_message_string(message, "Subject: x\r\n\r\nbody\r\n") == 1)
        #expect(smtp_add_recipient(message, "ops@example.com") != nil)
    }
}

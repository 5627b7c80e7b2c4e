@testable import AlertdKit
import Testing

@Suite struct DestinationPolicyTests {
    static func refused(_ policy: DestinationPolicy, _ address: String, host: String = "hooks.example.com") -> Bool {
        policy.refusal(host: host, address: DestinationPolicy.parse(address)!) != nil
    }

    @Test func refusesInternalAddressesByDefault() {
        let policy = DestinationPolicy()
        for address in ["127.0.0.1", "127.5.5.5", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
                        "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1",
                        "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
                        "::ffff:10.0.0.1", "64:ff9b::a9fe:a9fe", "2001:db8::1"] {
            #expect(Self.refused(policy, address), "\(address)")
        }
    }

    /// IPv6 forms that carry an IPv4 address are judged by it: 6to4, Teredo (server in clear,
    /// client inverted) and IPv4-compatible, besides the mapped and NAT64 forms above.
    @Test func refusesIPv6FormsThatEmbedARefusedIPv4Address() {
        let policy = DestinationPolicy()
        for address in ["2002:7f00:1::", "2002:7f00:0001:1234::5", "2002:a9fe:a9fe::1", "2002:c0a8:0101::",
                        "2001:0:7f00:1::1", "2001:0:5db8:1::80ff:fffe", "2001:0:5db8:1::3f57:fefe",
                        "::127.0.0.1", "::10.0.0.1", "::169.254.169.254"] {
            #expect(Self.refused(policy, address), "\(address)")
        }
        // The same forms around public IPv4 addresses are public.
        for address in ["2002:5db8:d822::1", "2001:0:5db8:d822::a247:27dd", "::93.184.216.34"] {
            #expect(!Self.refused(policy, address), "\(address)")
        }
        // The allow list admits the IPv4 address inside, as it does for mapped addresses.
        let allowed = try! DestinationPolicy.parse(allowList: "127.0.0.1")
        #expect(!Self.refused(allowed, "2002:7f00:1::"))
    }

    @Test func allowsPublicAddresses() {
        let policy = DestinationPolicy()
        for address in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:93.184.216.34"] {
            #expect(!Self.refused(policy, address), "\(address)")
        }
    }

    @Test func theAllowListAdmitsNetworksAndHostNames() throws {
        let policy = try DestinationPolicy.parse(allowList: "10.20.0.0/16, 127.0.0.1, hooks.internal.example")
        #expect(!Self.refused(policy, "10.20.3.4"))
        #expect(Self.refused(policy, "10.21.0.1"))
        #expect(!Self.refused(policy, "127.0.0.1"))
        #expect(!Self.refused(policy, "::ffff:127.0.0.1"))
        #expect(Self.refused(policy, "127.0.0.2"))
        #expect(!Self.refused(policy, "192.168.7.7", host: "Hooks.Internal.Example"))
        #expect(throws: AlertdError.self) { try DestinationPolicy.parse(allowList: "10.0.0.0/99") }
        #expect(throws: AlertdError.self) { try DestinationPolicy.parse(allowList: "not a host") }
    }

    @Test func saysWhyAndWhatToDo() throws {
        let reason = try #require(DestinationPolicy().refusal(host: "metadata.internal", address: DestinationPolicy.parse("169.254.169.254")!))
        #expect(reason.contains("169.254.169.254"))
        #expect(reason.contains("169.254.0.0/16"))
        #expect(reason.contains("ALERTD_WEBHOOK_ALLOW"))
    }
}

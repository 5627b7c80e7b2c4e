import AlertdSupport
import AlertdPostgres
import Foundation
import Testing

@Suite struct PostgresValueTests {
    /// Ids written and read byte by byte, as Foundation writes and reads them.
    @Test func uuidsRoundTripAsFoundationSpellsThem() throws {
        for _ in 0..<1_000 {
            let id = UUID()
            #expect(id.postgresText == id.uuidString.lowercased())
            #expect(try UUID(postgresText: id.postgresText) == id)
            #expect(try UUID(postgresText: id.uuidString) == id)
        }
        #expect(try UUID(postgresText: "00000000-0000-0000-0000-000000000000") == UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)))
        #expect(try UUID(postgresText: "FFFFFFFF-ffff-FFFF-ffff-FFFFFFFFFFFF").postgresText == "ffffffff-ffff-ffff-ffff-ffffffffffff")
        for bad in ["", "0000000-0000-0000-0000-0000000000000", "00000000x0000-0000-0000-000000000000", "0000000g-0000-0000-0000-000000000000",
                    "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000", "00000000-0000-0000-0000-00000000000é"] {
            #expect(throws: (any Error).self, "\(bad)") { try UUID(postgresText: bad) }
        }
    }

    @Test func readsArrays() throws {
        #expect(try [String](postgresText: "{}") == [])
        #expect(try [String](postgresText: "{a,b}") == ["a", "b"])
        #expect(try [String](postgresText: #"{"a b","c,d","e\"f","g\\h"}"#) == ["a b", "c,d", "e\"f", "g\\h"])
        #expect(try [String?](postgresText: #"{NULL,"NULL",x}"#) == [nil, "NULL", "x"])
        #expect(throws: (any Error).self) { try [String](postgresText: "{NULL}") }
        #expect(throws: (any Error).self) { try [String](postgresText: "not an array") }
    }

    @Test func writesArraysThatReadBack() throws {
        let values = ["plain", "with space", "quote\"d", "back\\slash", "comma,here", "NULL", ""]
        #expect(try [String](postgresText: values.postgresText) == values)
    }

    @Test func readsTimestampsWithAndWithoutOffsets() throws {
        let utc = try Date(postgresText: "2025-11-22 10:30:00+00")
        #expect(utc.timeIntervalSince1970 == 1_763_807_400)
        #expect(try Date(postgresText: "2025-11-22 12:30:00+02").timeIntervalSince1970 == 1_763_807_400)
        #expect(try Date(postgresText: "2025-11-22 05:00:00-05:30").timeIntervalSince1970 == 1_763_807_400)
        #expect(try Date(postgresText: "2025-11-22 10:30:00").timeIntervalSince1970 == 1_763_807_400)
        let fractional = try Date(postgresText: "2025-11-22 10:30:00.250000+00")
        #expect(abs(fractional.timeIntervalSince1970 - 1_763_807_400.25) < 1e-6)
    }

    @Test func writesTimestampsInUTCWithMicroseconds() {
        let date = Date(timeIntervalSince1970: 1_763_807_400.123456)
        #expect(date.postgresText == "2025-11-22T10:30:00.123456Z")
        #expect(PostgresTimestamp.parse(date.postgresText).map { abs($0.timeIntervalSince1970 - 1_763_807_400.123456) < 1e-6 } == true)
    }

    @Test func readsScalars() throws {
        #expect(try Bool(postgresText: "t") == true)
        #expect(try Bool(postgresText: "f") == false)
        #expect(try Int(postgresText: "-42") == -42)
        #expect(try Double(postgresText: "NaN").isNaN)
        #expect(try UUID(postgresText: "6f1c1b1e-3f0e-4b7a-9a55-2b1f3c4d5e6f") == UUID(uuidString: "6F1C1B1E-3F0E-4B7A-9A55-2B1F3C4D5E6F"))
        #expect(throws: (any Error).self) { try Int(postgresText: "4.5") }
    }
}

import AlertdSupport
import AlertdPostgres
import Testing

@Suite struct PostgresConnectionStringTests {
    @Test func aCopyWithAnotherUserMasksItsPasswordAndAnUnknownKeywordIsAnErrorNotACrash() throws {
        let string = try PostgresConnectionString("host=db.example.com dbname=payroll user=alice password=first-secret")
        let other = string.withUser("bob", password: "second-secret").withDatabase("hr")
        #expect(other.user == "bob" && other.database == "hr" && other.host == "db.example.com")
        #expect(!other.description.contains("second-secret"))
        #expect(other.redactor.redact("second-secret and first-secret") == "\(SecretRedactor.mask) and \(SecretRedactor.mask)")
        #expect(try string.replacing(["port": "6432"]).port == "6432")
        #expect(throws: PostgresError.self) { try string.replacing(["no_such_keyword": "1"]) }
    }

    @Test func readsAURI() throws {
        let string = try PostgresConnectionString("postgresql://alice:pa%40ss@db.example.com:6543/payroll?sslmode=require")
        #expect(string.host == "db.example.com")
        #expect(string.port == "6543")
        #expect(string.database == "payroll")
        #expect(string.user == "alice")
        #expect(string.value(of: "sslmode") == "require")
        #expect(string.value(of: "password") == "pa@ss")
    }

    @Test func readsAConninfoString() throws {
        let string = try PostgresConnectionString("host=/var/run/postgresql dbname='my db' user=etl password=hunter22")
        #expect(string.host == "/var/run/postgresql")
        #expect(string.database == "my db")
        #expect(string.user == "etl")
    }

    @Test func descriptionMasksThePassword() throws {
        let uri = try PostgresConnectionString("postgresql://alice:topsecret1@db.example.com/payroll")
        #expect(!uri.description.contains("topsecret1"))
        #expect(uri.description.contains("password=********"))
        #expect(uri.description.contains("host=db.example.com"))

        let conninfo = try PostgresConnectionString("host=h password='two words'")
        #expect(!conninfo.description.contains("two words"))
    }

    @Test func anUnparseableStringFailsWithoutShowingItsPassword() throws {
        for text in ["postgresql://alice:s3cr%zzet@host/db", "host=h password=abcsecret bogus", "postgresql://bob:hunter2@[::1/db"] {
            let error = #expect(throws: PostgresError.self) {
                try PostgresConnectionString(text)
            }
            if let error {
                #expect(error.code == .invalidConnectionString)
                #expect(!error.description.contains("s3cr"))
                #expect(!error.description.contains("abcsecret"))
                #expect(!error.description.contains("hunter2"))
            }
        }
    }

    @Test func anEmptyStringIsAnError() {
        #expect(throws: PostgresError.self) { try PostgresConnectionString("   ") }
    }

    @Test func withDatabaseKeepsEverythingElse() throws {
        let string = try PostgresConnectionString("postgresql://alice:pw@localhost:5433/one?application_name=x")
        let other = string.withDatabase("two")
        #expect(other.database == "two")
        #expect(other.port == "5433")
        #expect(other.value(of: "password") == "pw")
        #expect(other.value(of: "application_name") == "x")
    }
}

@Suite struct SecretRedactorTests {
    @Test func masksKnownSecretsEverywhere() {
        let redactor = SecretRedactor(secrets: ["hunter2"])
        #expect(redactor.redact("login hunter2 failed; hunter2 again") == "login ******** failed; ******** again")
    }

    @Test func masksPasswordsShapedLikeOne() {
        let redactor = SecretRedactor()
        #expect(redactor.redact("to smtp://mail:xyz987@mx.example.com:587 now") == "to smtp://mail:********@mx.example.com:587 now")
        #expect(redactor.redact("host=h password=abc port=1") == "host=h password=******** port=1")
        #expect(redactor.redact("host=h password = 'a b' port=1") == "host=h password=******** port=1")
        #expect(redactor.redact("https://x/?user=a&password=qq&z=1") == "https://x/?user=a&password=********&z=1")
    }

    @Test func leavesOrdinaryTextAlone() {
        let text = "password authentication failed for user \"postgres\" at https://example.com/path"
        #expect(SecretRedactor().redact(text) == text)
    }
}

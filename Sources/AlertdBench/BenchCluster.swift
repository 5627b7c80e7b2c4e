import AlertdSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The benchmark's own PostgreSQL 15 cluster: made with initdb in a scratch directory, listening
/// on a free loopback port, trusting loopback connections (it lives for one run and is deleted),
/// durable as a production server is (fsync and synchronous_commit on).
struct BenchCluster: Sendable {
    let directory: URL
    let port: Int
    let binaries: String

    /// Superuser connection string.
    var url: String { "host=127.0.0.1 port=\(port) dbname=postgres user=postgres" }

    func url(user: String, database: String = "postgres") -> String {
        "host=127.0.0.1 port=\(port) dbname=\(database) user=\(user)"
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The settings the cluster runs with, besides PostgreSQL's defaults.
    static let settings = [
        "listen_addresses=127.0.0.1",
        "shared_buffers=256MB",
        "max_wal_size=2GB",
        "max_connections=100",
        "fsync=on",
        "synchronous_commit=on",
    ]

    /// With `statements`, pg_stat_statements too (`alertd bench --statements`): what each
    /// statement costs, planning included. Off by default: it costs a little on every statement,
    /// and an earlier build's bench runs without it.
    static let statementSettings = [
        "shared_preload_libraries=pg_stat_statements",
        "pg_stat_statements.track_planning=on",
        "pg_stat_statements.max=1000",
    ]

    static func start(binaries: String?, statements: Bool = false) async throws -> BenchCluster {
        let bin = binaries ?? "/usr/lib/postgresql/15/bin"
        guard FileManager.default.isExecutableFile(atPath: "\(bin)/initdb") else {
            throw Failure(description: "no PostgreSQL 15 at \(bin) (install postgresql-15, or pass --pg-bin)")
        }
        let directory = FileManager.default.temporaryDirectory.appending(path: "alertd-bench-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory.appending(path: "socket"), withIntermediateDirectories: true)
        let cluster = BenchCluster(directory: directory, port: try freePort(), binaries: bin)
        if getuid() == 0 {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            guard let owner = getpwnam("postgres") else { throw Failure(description: "running as root, and there is no postgres user to own the cluster") }
            for path in [directory.path, directory.appending(path: "socket").path] {
                chown(path, owner.pointee.pw_uid, owner.pointee.pw_gid)
            }
        }
        try await cluster.run("initdb", ["-D", cluster.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"])
        let options = (["-p", String(cluster.port), "-k", directory.appending(path: "socket").path] + (settings + (statements ? statementSettings : [])).flatMap { ["-c", $0] }).joined(separator: " ")
        try await cluster.run("pg_ctl", ["-D", cluster.data, "-l", directory.appending(path: "server.log").path, "-w", "-t", "60", "-o", options, "start"])
        return cluster
    }

    /// Stops the server and deletes the cluster.
    func destroy() async {
        _ = try? await run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    private var data: String { directory.appending(path: "data").path }

    /// CPU seconds the server has used: its processes alive now and those that have ended (the
    /// postmaster's children's times), from /proc.
    var cpuSeconds: Double {
        guard let pidFile = try? String(contentsOfFile: "\(data)/postmaster.pid", encoding: .utf8),
              let line = pidFile.split(separator: "\n").first, let postmaster = Int32(line) else { return 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let fields = ProcessStat.fields(pid) else { continue }
            // After the command: ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
            let parent = Int32(fields[1]) ?? 0
            func number(_ index: Int) -> Double { Double(fields[index]) ?? 0 }
            if pid == postmaster {
                total += number(11) + number(12) + number(13) + number(14)
            } else if parent == postmaster {
                total += number(11) + number(12)
            }
        }
        return total / ticks
    }

    /// Runs one of PostgreSQL's programs, as the postgres user when alertd runs as root.
    private func run(_ program: String, _ arguments: [String]) async throws {
        let log = directory.appending(path: "\(program).log").path
        let (executable, argv) = getuid() == 0
            ? ("/usr/sbin/runuser", ["-u", "postgres", "--", "\(binaries)/\(program)"] + arguments)
            : ("\(binaries)/\(program)", arguments)
        if getuid() == 0 {
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            if let owner = getpwnam("postgres") { chown(log, owner.pointee.pw_uid, owner.pointee.pw_gid) }
        }
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        environment["LC_ALL"] = "C.UTF-8"
        let status = try await ChildProcess.run(executable, argv, environment: environment, output: log, error: log)
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw Failure(description: "\(program) failed (status \(status)): \(output.suffix(2_000))")
        }
    }

    /// A loopback port nothing listens on now.
    static func freePort() throws -> Int {
        let socket = try ListeningSocket.open(host: "127.0.0.1", port: 0)
        close(socket.fd)
        return socket.port
    }
}

/// /proc/PID/stat, read for CPU times.
enum ProcessStat {
    /// The fields after the command's name (the state first), nil if the process is gone.
    static func fields(_ pid: Int32) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 14 ? fields : nil
    }
}

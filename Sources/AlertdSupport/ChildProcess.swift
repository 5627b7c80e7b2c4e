import Foundation

/// A child process started with posix_spawn: standard input from /dev/null, output to files, no
/// signal blocked.
///
/// Files, not pipes: a child that starts a daemon (pg_ctl starting postgres) would pass the pipe
/// on, and a reader would wait for its end forever. The signal mask is cleared because threads of
/// a Swift process block signals, and the mask survives exec: a server would not hear SIGTERM.
public struct ChildProcess: Sendable {
    public let pid: pid_t

    public struct SpawnError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `executable` (a path) with `arguments`.
    public static func spawn(_ executable: String, _ arguments: [String], environment: [String: String], output: String, error: String) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, error, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(spawned)))") }
        return ChildProcess(pid: pid)
    }

    /// Waits for the process to end, blocking this thread; its exit status, or 128 + the signal
    /// that ended it.
    public func waitBlocking() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Whether the process has ended, without waiting; its status when it has.
    public func exitStatusIfEnded() -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return nil }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs a program to its end on a thread of its own, its output in files; returns its status.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String], output: String, error: String) async throws -> Int32 {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try spawn(executable, arguments, environment: environment, output: output, error: error).waitBlocking()
                })
            }.start()
        }
    }
}

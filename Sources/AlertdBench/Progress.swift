import Foundation

/// Progress on standard error: one line rewritten in place on a terminal, else a line every few
/// seconds.
final class Progress: @unchecked Sendable {
    // Invariant: `lastLine` and `phaseName` are read and written with `lock` held.
    private let lock = NSLock()
    private let interactive: Bool
    private var lastLine = ContinuousClock.now
    private var phaseName = ""
    private let started = ContinuousClock.now

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func phase(_ name: String) {
        lock.withLock {
            phaseName = name
            write((interactive ? "\r\u{1B}[K" : "") + "bench [\(elapsed)] \(name)\n")
        }
    }

    func status(_ text: String) {
        lock.withLock {
            if interactive {
                write("\r\u{1B}[K  \(text)")
            } else if ContinuousClock.now - lastLine >= .seconds(5) {
                lastLine = .now
                write("bench [\(elapsed)]   \(text)\n")
            }
        }
    }

    func done() {
        lock.withLock { write((interactive ? "\r\u{1B}[K" : "") + "bench [\(elapsed)] done\n") }
    }

    private var elapsed: String {
        let seconds = Int((ContinuousClock.now - started).seconds)
        return String(format: "%d:%02d", seconds / 60, seconds % 60)
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

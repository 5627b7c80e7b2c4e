import AlertdSupport
import Foundation
import Testing

@Suite struct BlockingWorkerTests {
    @Test func jobsRunInOrderOnTheWorkersOwnNamedThread() async throws {
        let worker = BlockingWorker(name: "alertd-test")
        let names = try await worker.run { Thread.current.name }
        #expect(names == "alertd-test")
        var order: [Int] = []
        for n in 0..<5 { order.append(try await worker.run { n }) }
        #expect(order == [0, 1, 2, 3, 4])
        worker.shutdown()
    }

    @Test func aJobAfterShutdownFailsClearly() async {
        let worker = BlockingWorker(name: "alertd-test")
        worker.shutdown()
        await #expect(throws: BlockingWorkerStopped.self) { try await worker.run { 1 } }
    }
}

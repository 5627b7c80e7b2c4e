import Foundation

/// The news of an integration's endpoints that failed within the group interval goes out as one
/// message per channel: the trigger holds such alerts to one due time and marks their group
/// (`metadata ->> 'group'`), the claim takes a group's alerts together, and here each group
/// becomes one message, carried by one of its alerts.
///
/// Every alert of a group still gets its own attempt and outcome: the message's.
enum AlertGroups {
    /// The most alerts one message carries; a larger group goes out as several messages.
    static let largest = 50

    /// `alerts`, with each group's alerts folded into one message: its first alert (a failure
    /// before a warning, then the oldest, then by endpoint) carries the others in `grouped`,
    /// sorted by endpoint. An alert alone in its group goes out as any other.
    static func form(_ alerts: [ClaimedAlert]) -> [ClaimedAlert] {
        var messages: [[ClaimedAlert]] = []
        var open: [Key: Int] = [:]
        for alert in alerts {
            guard let key = Key(alert) else {
                messages.append([alert])
                continue
            }
            if let index = open[key], messages[index].count < largest {
                messages[index].append(alert)
            } else {
                open[key] = messages.count
                messages.append([alert])
            }
        }
        return messages.map { members in
            guard members.count > 1 else { return members[0] }
            let ordered = members.sorted(by: leads)
            var leader = ordered[0]
            leader.grouped = ordered.dropFirst().sorted(by: byEndpoint)
            return leader
        }
    }

    /// Alerts that may share a message: held news of one group, to the same recipients on the same
    /// channel, with an attempt left.
    struct Key: Hashable {
        let group: String
        let channel: Channel
        let recipients: [String]
        let done: [String]

        init?(_ alert: ClaimedAlert) {
            guard let group = alert.groupKey, alert.origin == .trigger, alert.type == .failure || alert.type == .warning,
                  alert.sync != nil, alert.attempt <= alert.maxAttempts
            else { return nil }
            self.group = group
            channel = alert.channel
            recipients = alert.recipients
            done = alert.doneRecipients.sorted()
        }
    }

    private static func leads(_ a: ClaimedAlert, _ b: ClaimedAlert) -> Bool {
        if a.type != b.type { return a.type == .failure }
        let at = a.createdAt ?? .distantPast
        let bt = b.createdAt ?? .distantPast
        if at != bt { return at < bt }
        return byEndpoint(a, b)
    }

    private static func byEndpoint(_ a: ClaimedAlert, _ b: ClaimedAlert) -> Bool {
        (a.sync?.endpoint ?? "", a.id.uuidString) < (b.sync?.endpoint ?? "", b.id.uuidString)
    }

    /// The metadata patch that records, on each alert of a message of several, which alerts it
    /// went with and which one carried it: `{"group_message": {"carried_by": ..., "alerts": [...]}}`,
    /// merged into the attempt's own patch.
    static func metadataPatch(_ patch: String?, message leader: ClaimedAlert) -> String? {
        guard !leader.grouped.isEmpty else { return patch }
        var object = patch.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        object["group_message"] = [
            "carried_by": leader.id.uuidString.lowercased(),
            "alerts": ([leader] + leader.grouped).map { $0.id.uuidString.lowercased() },
        ] as [String: Any]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return patch }
        return String(decoding: data, as: UTF8.self)
    }
}

extension ClaimedAlert {
    /// This alert and those it carries in its message.
    var members: [ClaimedAlert] { [self] + grouped }
}

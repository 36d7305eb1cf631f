using System.Text.Json.Nodes;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Relations;

/// <summary>
/// Bundled aggregations (spec: "Aggregations of child events"): <c>unsigned.m.relations</c> on served events with the
/// latest valid edit (<c>m.replace</c>), the referencing events (<c>m.reference</c>) and the thread summary
/// (<c>m.thread</c>: count, latest event, whether the user took part). Annotations are not aggregated, and an edit
/// never changes the original's content (spec v1.7).
/// </summary>
public sealed class RelationBundler(Database db, RelationStore relations, RoomStore rooms, RoomReader reader)
{
    /// <summary>Adds the aggregations to every non-state event of <paramref name="events"/> (client format, one room).</summary>
    public async Task AddAsync(RoomSnapshot room, JsonArray events, string userId, CancellationToken ct)
    {
        var targets = events.OfType<JsonObject>()
            .Where(e => e["state_key"] is null && e["event_id"] is JsonValue)
            .GroupBy(e => e["event_id"]!.GetValue<string>()).ToDictionary(g => g.Key, g => g.ToList());
        if (targets.Count == 0)
            return;
        var ids = targets.Keys.ToList();
        var childrenRead = relations.EditsAndReferences(ids);
        var threadsRead = relations.ThreadSummaries(ids, userId);
        await db.ReadAllAsync([childrenRead, threadsRead], ct);
        var (children, threads) = (childrenRead.Result, threadsRead.Result);
        var edits = children.Where(c => c.RelType == "m.replace").ToList();
        var references = children.Where(c => c.RelType == "m.reference").ToList();

        foreach (var (eventId, copies) in targets)
        {
            var original = copies[0];
            var bundle = new JsonObject();
            if (await LatestEditAsync(room, original, edits.Where(e => e.RelatesToId == eventId), ct) is { } edit)
                bundle["m.replace"] = edit;
            var referencing = references.Where(r => r.RelatesToId == eventId).ToList();
            if (referencing.Count > 0)
                bundle["m.reference"] = new JsonObject
                {
                    ["chunk"] = new JsonArray(referencing.Select(r => (JsonNode)new JsonObject { ["event_id"] = r.EventId }).ToArray()),
                };
            if (threads.FirstOrDefault(t => t.RelatesToId == eventId) is { } thread && await ThreadAsync(room, thread, ct) is { } latest)
                bundle["m.thread"] = new JsonObject
                {
                    ["latest_event"] = latest,
                    ["count"] = thread.Count,
                    ["current_user_participated"] = thread.Participated > 0 || original["sender"]?.GetValue<string>() == userId,
                };
            if (bundle.Count == 0)
                continue;
            foreach (var copy in copies)
            {
                var unsigned = copy["unsigned"] as JsonObject ?? (JsonObject)(copy["unsigned"] = new JsonObject());
                unsigned["m.relations"] = bundle.DeepClone();
            }
        }
    }

    /// <summary>The thread's latest event, in client format with its own latest edit bundled.</summary>
    private async Task<JsonObject?> ThreadAsync(RoomSnapshot room, ThreadSummaryRow thread, CancellationToken ct)
    {
        var latest = await db.ReadAsync(s => s.QuerySingleOrDefaultAsync<string?>(
            "SELECT event_id FROM event_relations WHERE relates_to_id = @root AND rel_type = 'm.thread' AND stream_ordering = @latest",
            new { root = thread.RelatesToId, latest = thread.Latest }), ct);
        if (latest is null || await db.ReadAsync(s => rooms.GetEventAsync(s, latest), ct) is not { } row)
            return null;
        var serialized = await reader.ToClientAsync(room, row, ct);
        var edits = (await db.ReadAsync(s => relations.EditsAndReferencesAsync(s, [latest]), ct)).Where(r => r.RelType == "m.replace");
        if (await LatestEditAsync(room, serialized, edits, ct) is { } edit)
            ((serialized["unsigned"] as JsonObject) ?? (JsonObject)(serialized["unsigned"] = new JsonObject()))["m.relations"] =
                new JsonObject { ["m.replace"] = edit };
        return serialized;
    }

    /// <summary>
    /// The most recent valid replacement (by origin_server_ts, then event ID): same sender and type as the original,
    /// neither a state event, the original not itself an edit nor redacted, and (when readable) with m.new_content.
    /// </summary>
    private async Task<JsonObject?> LatestEditAsync(RoomSnapshot room, JsonObject original, IEnumerable<RelationRow> candidates, CancellationToken ct)
    {
        if (original["unsigned"]?["redacted_because"] is not null
            || original["content"]?["m.relates_to"]?["rel_type"]?.GetValue<string>() == "m.replace")
            return null;
        var sender = original["sender"]?.GetValue<string>();
        var type = original["type"]?.GetValue<string>();
        foreach (var candidate in candidates.Where(c => c.Sender == sender && c.Type == type)
                     .OrderByDescending(c => c.OriginServerTs).ThenByDescending(c => c.EventId, StringComparer.Ordinal))
        {
            if (await db.ReadAsync(s => rooms.GetEventAsync(s, candidate.EventId), ct) is not { StateKey: null } row)
                continue;
            var edit = await reader.ToClientAsync(room, row, ct);
            if (row.Type != "m.room.encrypted" && edit["content"]?["m.new_content"] is not JsonObject)
                continue;
            return edit;
        }
        return null;
    }
}

using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Storage;

namespace Matrix.Homeserver.Relations;

/// <summary>Records each accepted event's relationship in its own transaction, and forgets a redacted event's.</summary>
public sealed class RelationsWriter(RelationStore relations) : IEventListener
{
    public async Task OnPersistingAsync(DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore)
    {
        if (pdu.Redacts is { } redacted)
            await relations.DeleteAsync(session, redacted);
        if (Parse(pdu.Json) is not var (parentId, relType, key))
            return;
        await relations.InsertAsync(session, new RelationRow
        {
            EventId = pdu.EventId, RelatesToId = parentId, RelType = relType, AggregationKey = key, RoomId = pdu.RoomId, Sender = pdu.Sender,
            Type = pdu.Type, StreamOrdering = streamOrdering, OriginServerTs = pdu.OriginServerTs,
        });
    }

    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
    }

    /// <summary>The parent, relation type and annotation key of <c>content.m.relates_to</c>, when it names a relation.</summary>
    public static (string ParentId, string RelType, string? Key)? Parse(JsonObject ev)
    {
        if (ev["content"]?["m.relates_to"] is not JsonObject relation
            || relation["rel_type"] is not JsonValue relType || !relType.TryGetValue<string>(out var type)
            || relation["event_id"] is not JsonValue parent || !parent.TryGetValue<string>(out var parentId))
            return null;
        var key = relation["key"] is JsonValue k && k.TryGetValue<string>(out var text) ? text : null;
        return (parentId, type, key);
    }
}

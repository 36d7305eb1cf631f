using System.Text.Json.Nodes;
using Matrix.Federation.Events;

namespace Matrix.Homeserver.Rooms;

/// <summary>The client-server format of room events (ClientEvent), from the stored federation format.</summary>
public static class ClientEventFormat
{
    /// <param name="pruned">shown as redacted without a redaction (an erased sender's event)</param>
    public static JsonObject ToClient(Pdu pdu, long now, string? transactionId = null, Pdu? redactedBecause = null, bool pruned = false)
    {
        var content = redactedBecause is null && !pruned ? pdu.Content : Redaction.Redact(pdu.Json, pdu.Version)["content"]!.AsObject();
        var evt = new JsonObject
        {
            ["content"] = content.DeepClone(),
            ["event_id"] = pdu.EventId,
            ["origin_server_ts"] = pdu.OriginServerTs,
            ["room_id"] = pdu.RoomId,
            ["sender"] = pdu.Sender,
            ["type"] = pdu.Type,
        };
        if (pdu.StateKey is not null)
            evt["state_key"] = pdu.StateKey;
        // Both places, whatever the room version: older clients read the top level, newer ones content (v11).
        if (pdu.Redacts is not null && redactedBecause is null)
        {
            evt["redacts"] = pdu.Redacts;
            evt["content"]!["redacts"] = pdu.Redacts;
        }
        var unsigned = new JsonObject { ["age"] = Math.Max(0, now - pdu.OriginServerTs) };
        if (transactionId is not null)
            unsigned["transaction_id"] = transactionId;
        if (redactedBecause is not null)
        {
            unsigned["redacted_because"] = ToClient(redactedBecause, now);
            // Synapse's shorthand beside the spec's field; clients and SyTest read it.
            unsigned["redacted_by"] = redactedBecause.EventId;
        }
        evt["unsigned"] = unsigned;
        return evt;
    }

    /// <summary>
    /// The federation format a sync filter may ask for (<c>event_format: federation</c>): the PDU as stored (redacted when
    /// it was), with its event ID and the same <c>unsigned</c> data as the client format.
    /// </summary>
    public static JsonObject ToFederation(Pdu pdu, long now, string? transactionId = null, Pdu? redactedBecause = null)
    {
        var evt = (redactedBecause is null ? pdu.Json.DeepClone() : Redaction.Redact(pdu.Json, pdu.Version)).AsObject();
        evt["event_id"] = pdu.EventId;
        evt["unsigned"] = ToClient(pdu, now, transactionId, redactedBecause)["unsigned"]!.DeepClone();
        return evt;
    }

    /// <summary>Stripped state (invites, knocks): type, state_key, sender and content only.</summary>
    public static JsonObject ToStripped(Pdu pdu) => new()
    {
        ["type"] = pdu.Type,
        ["state_key"] = pdu.StateKey,
        ["sender"] = pdu.Sender,
        ["content"] = pdu.Content.DeepClone(),
    };
}

using System.Text.Json;
using Matrix.Federation.Rooms;

namespace Matrix.Federation.Events;

/// <summary>
/// Reads the fields of an event the server stored after checking it, straight from its UTF-8 and without building its
/// JSON tree, which is parsed only if something reads <see cref="Pdu.Json"/> (most loaded events are only placed in
/// the room graph or written out).
/// </summary>
public static class StoredPduReader
{
    /// <summary>False when the stored JSON is not in the shape this reader expects; parse it as a tree then.</summary>
    public static bool TryRead(byte[] utf8, string eventId, RoomVersion version, out Pdu pdu)
    {
        pdu = null!;
        string? type = null, sender = null, stateKey = null, roomId = null, topRedacts = null, contentRedacts = null, membership = null;
        long? depth = null, originServerTs = null;
        List<string>? prevEvents = null, authEvents = null;
        var hasContent = false;
        try
        {
            var reader = new Utf8JsonReader(utf8);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                return false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueIsEscaped)
                    return false;
                var name = reader.ValueSpan;
                reader.Read();
                if (name.SequenceEqual("type"u8)) type = ReadString(ref reader);
                else if (name.SequenceEqual("sender"u8)) sender = ReadString(ref reader);
                else if (name.SequenceEqual("state_key"u8)) stateKey = ReadString(ref reader) ?? throw Unexpected;
                else if (name.SequenceEqual("room_id"u8)) roomId = ReadString(ref reader);
                else if (name.SequenceEqual("redacts"u8)) topRedacts = ReadString(ref reader);
                else if (name.SequenceEqual("depth"u8)) depth = ReadInteger(ref reader);
                else if (name.SequenceEqual("origin_server_ts"u8)) originServerTs = ReadInteger(ref reader);
                else if (name.SequenceEqual("prev_events"u8)) prevEvents = ReadReferences(ref reader, version);
                else if (name.SequenceEqual("auth_events"u8)) authEvents = ReadReferences(ref reader, version);
                else if (name.SequenceEqual("content"u8)) { (contentRedacts, membership) = ReadContentFields(ref reader); hasContent = true; }
                else if (name.SequenceEqual("unsigned"u8)) return false;
                else reader.Skip();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return false;
        }
        if (type is null || sender is null || depth is null || originServerTs is null || prevEvents is null || authEvents is null || !hasContent)
            return false;

        if (version.RoomIdIsCreateEventHash && type == "m.room.create" && stateKey == "")
            roomId = "!" + eventId[1..];
        if (roomId is null)
            return false;
        string? redacts = null;
        if (type == "m.room.redaction")
            redacts = version.RedactsInContent ? contentRedacts : topRedacts;

        pdu = new Pdu(utf8)
        {
            Version = version, EventId = eventId, RoomId = roomId, Type = type, StateKey = stateKey, Sender = sender,
            Depth = depth.Value, OriginServerTs = originServerTs.Value, PrevEvents = prevEvents, AuthEvents = authEvents,
            Redacts = redacts, Membership = type == "m.room.member" ? membership : null,
        };
        return true;
    }

    private static readonly InvalidOperationException Unexpected = new("unexpected stored event shape");

    private static string? ReadString(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.String ? reader.GetString() : throw Unexpected;

    private static long ReadInteger(ref Utf8JsonReader reader) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var value) ? value : throw Unexpected;

    /// <summary>Plain event IDs, or v1-v2's <c>[event_id, {hashes}]</c> pairs.</summary>
    private static List<string> ReadReferences(ref Utf8JsonReader reader, RoomVersion version)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw Unexpected;
        var ids = new List<string>(4);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (version.EventIdFormat == EventIdFormat.ServerChosen)
            {
                if (reader.TokenType != JsonTokenType.StartArray || !reader.Read())
                    throw Unexpected;
                ids.Add(ReadString(ref reader)!);
                reader.Read();
                reader.Skip();
                if (!reader.Read() || reader.TokenType != JsonTokenType.EndArray)
                    throw Unexpected;
            }
            else
                ids.Add(ReadString(ref reader)!);
        }
        return ids;
    }

    /// <summary>Walks the content object for the string values the event's fields keep: <c>redacts</c> (v11 redactions) and <c>membership</c>.</summary>
    private static (string? Redacts, string? Membership) ReadContentFields(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw Unexpected;
        string? redacts = null, membership = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isRedacts = reader.ValueTextEquals("redacts"u8);
            var isMembership = reader.ValueTextEquals("membership"u8);
            reader.Read();
            if (isRedacts && reader.TokenType == JsonTokenType.String)
                redacts = reader.GetString();
            else if (isMembership && reader.TokenType == JsonTokenType.String)
                membership = reader.GetString();
            else
                reader.Skip();
        }
        return (redacts, membership);
    }
}

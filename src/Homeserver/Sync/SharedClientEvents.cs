using System.Buffers;
using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Matrix.Federation.Events;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// Recent events' client format, serialised once for all the syncs that carry them: a message wakes the long-poll of
/// each member of its room, and each built the same event as a JSON tree and wrote it out again. A sync's copy is
/// the shared bytes followed by its own <c>unsigned</c> (the age, the transaction ID on the sender's device), written
/// into the response as they are. Only for messages shown as they are (not redacted, not erased, nothing bundled):
/// the response's state events are read back before it is written.
/// A local user's new message is serialised as soon as it is stored and its JSON tree dropped (<see cref="Pdu.Compact"/>):
/// the syncs it wakes need only these bytes, and a tree kept until the event cache demotes it outlived a collection or
/// two, and every collection copies what survives it.
/// </summary>
public sealed class SharedClientEvents(Config.HomeserverConfig config) : IEventListener
{
    private const int Remembered = 4096;

    private static readonly JsonTypeInfo<Serialised> SerialisedInfo = (JsonTypeInfo<Serialised>)new JsonSerializerOptions
    {
        Converters = { new SerialisedConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    }.GetTypeInfo(typeof(Serialised));

    // Each sync's copy is put together here as it is written out: the shared bytes, then its own unsigned.
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_copy;
    [ThreadStatic] private static Utf8JsonWriter? t_unsignedWriter;

    private readonly ConcurrentDictionary<string, byte[]> _heads = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();

    /// <summary>The event as <see cref="ClientEventFormat.ToClient"/> shows it, unredacted, to a reader at <paramref name="now"/>.</summary>
    public JsonNode ToClient(Pdu pdu, long now, string? transactionId)
    {
        var head = _heads.TryGetValue(pdu.EventId, out var known) ? known : Remember(pdu);
        return JsonValue.Create(new Serialised(head, Math.Max(0, now - pdu.OriginServerTs), transactionId), SerialisedInfo)!;
    }

    public Task OnPersistingAsync(Storage.DbSession session, Pdu pdu, long streamOrdering, RoomSnapshot roomAfter, RoomSnapshot? roomBefore) =>
        Task.CompletedTask;

    /// <summary>
    /// A message of this server's users is serialised now, while its tree is at hand, then compacted; state events stay
    /// parsed (auth and push rules read them again), and a remote user's events go through the relation bundler.
    /// </summary>
    public void OnPersisted(Pdu pdu, RoomSnapshot roomAfter)
    {
        if (pdu.IsState || !EventSigning.IsOf(pdu.Sender, config.ServerName))
            return;
        if (!_heads.ContainsKey(pdu.EventId))
            Remember(pdu);
        pdu.Compact();
    }

    /// <summary>The event's client format up to its <c>unsigned</c> value: <c>{"content":…,"type":"…","unsigned":</c>.</summary>
    private byte[] Remember(Pdu pdu)
    {
        var evt = ClientEventFormat.ToClient(pdu, 0);
        evt.Remove("unsigned");
        var buffer = new ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer, ErrorMiddleware.WriterOptions))
            evt.WriteTo(writer);
        var head = new byte[buffer.WrittenCount - 1 + ",\"unsigned\":"u8.Length];
        buffer.WrittenSpan[..^1].CopyTo(head);
        ",\"unsigned\":"u8.CopyTo(head.AsSpan(buffer.WrittenCount - 1));
        if (_heads.TryAdd(pdu.EventId, head))
        {
            _order.Enqueue(pdu.EventId);
            while (_order.Count > Remembered && _order.TryDequeue(out var oldest))
                _heads.TryRemove(oldest, out _);
        }
        return head;
    }

    private sealed record Serialised(byte[] Head, long Age, string? TransactionId);

    private sealed class SerialisedConverter : JsonConverter<Serialised>
    {
        public override Serialised Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            throw new NotSupportedException("a shared event is not read back");

        public override void Write(Utf8JsonWriter writer, Serialised value, JsonSerializerOptions options)
        {
            var copy = t_copy ??= new ArrayBufferWriter<byte>(4096);
            copy.ResetWrittenCount();
            copy.Write(value.Head);
            var unsigned = t_unsignedWriter ??= new Utf8JsonWriter(copy, ErrorMiddleware.WriterOptions);
            unsigned.Reset(copy);
            unsigned.WriteStartObject();
            unsigned.WriteNumber("age", value.Age);
            if (value.TransactionId is not null)
                unsigned.WriteString("transaction_id", value.TransactionId);
            unsigned.WriteEndObject();
            unsigned.Flush();
            copy.Write("}"u8);
            writer.WriteRawValue(copy.WrittenSpan, skipInputValidation: true);
        }
    }
}

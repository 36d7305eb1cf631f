using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Federation.Events;
using Matrix.Federation.Rooms;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Rooms;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Tests;

/// <summary>
/// An event serialised once for many syncs reads, for each of them, exactly as the JSON tree of
/// <see cref="ClientEventFormat.ToClient"/> written into a response would.
/// </summary>
public sealed class SharedClientEventsTests
{
    private static readonly RoomVersion Version = RoomVersions.Find("11")!;

    private static Pdu Event(string type, string? stateKey, JsonObject content, string eventId)
    {
        var json = new JsonObject
        {
            ["type"] = type,
            ["sender"] = "@alice:local.test",
            ["room_id"] = "!room:local.test",
            ["content"] = content,
            ["origin_server_ts"] = 1_765_000_000_000L,
            ["depth"] = 5L,
            ["prev_events"] = new JsonArray("$prev"),
            ["auth_events"] = new JsonArray("$create"),
            ["hashes"] = new JsonObject { ["sha256"] = "abc" },
            ["signatures"] = new JsonObject(),
        };
        if (stateKey is not null)
            json["state_key"] = stateKey;
        Assert.True(PduParser.TryParse(json, Version, out var pdu, out var error, trustedEventId: eventId), error);
        return pdu;
    }

    private static string Written(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, ErrorMiddleware.WriterOptions))
            new JsonArray(node).WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    public static TheoryData<string> Cases => ["message", "state", "redaction", "unicode"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_shared_event_is_written_as_its_tree_would_be_for_every_reader(string kind)
    {
        var pdu = kind switch
        {
            "message" => Event("m.room.message", null, new JsonObject { ["msgtype"] = "m.text", ["body"] = "hello" }, "$m"),
            "state" => Event("m.room.member", "@bob:local.test", new JsonObject { ["membership"] = "join", ["displayname"] = "Bob" }, "$s"),
            "redaction" => Event("m.room.redaction", null, new JsonObject { ["redacts"] = "$m" }, "$r"),
            _ => Event("m.room.message", null, new JsonObject { ["body"] = "é \"quoted\" <b> \u2028 😀", ["n"] = 1.5 }, "$u"),
        };
        var shared = new SharedClientEvents();
        foreach (var (now, transactionId) in new[] { (1_765_000_000_500L, (string?)null), (1_765_000_009_000L, "txn \"1\""), (1_764_000_000_000L, null) })
            Assert.Equal(Written(ClientEventFormat.ToClient(pdu, now, transactionId)), Written(shared.ToClient(pdu, now, transactionId)));
    }

    [Fact]
    public void A_shared_event_can_be_copied_and_read_back()
    {
        var pdu = Event("m.room.message", null, new JsonObject { ["body"] = "hello" }, "$c");
        var node = new SharedClientEvents().ToClient(pdu, 1_765_000_001_000L, "t1");
        var copy = JsonNode.Parse(node.DeepClone().ToJsonString())!;
        Assert.Equal("$c", copy["event_id"]!.GetValue<string>());
        Assert.Equal(1000, copy["unsigned"]!["age"]!.GetValue<long>());
        Assert.Equal("t1", copy["unsigned"]!["transaction_id"]!.GetValue<string>());
    }
}

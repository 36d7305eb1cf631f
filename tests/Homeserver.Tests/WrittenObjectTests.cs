using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Matrix.Homeserver.Http;
using Matrix.Homeserver.Sync;

namespace Matrix.Homeserver.Tests;

/// <summary>An object written straight from its fields reads, once written, exactly as the JSON object it stands for.</summary>
public sealed class WrittenObjectTests
{
    private static string Written(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, ErrorMiddleware.WriterOptions))
            node.WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static JsonNode Sample(bool writeOnly) => WrittenObject.Of(writeOnly,
        ("next_batch", "s5_\"quoted\"_caf\u00e9"),
        ("rooms", WrittenObject.Of(writeOnly, ("join", new JsonObject { ["!a:x"] = new JsonObject { ["n"] = 1 } }), ("leave", new JsonObject()))),
        ("limited", true),
        ("count", 42L),
        ("nothing", null),
        ("events", new JsonArray(new JsonObject { ["type"] = "m.typing" }, 3, "\u2028")),
        ("empty", WrittenObject.Of(writeOnly)),
        ("shared", new SharedClientEvents(new Config.HomeserverConfig()).ToClient(SharedEvent, 1_765_000_000_100L, "txn1")));

    private static readonly Matrix.Federation.Events.Pdu SharedEvent = Matrix.Federation.Events.Pdu.Parse(new JsonObject
    {
        ["type"] = "m.room.message", ["sender"] = "@alice:local.test", ["room_id"] = "!room:local.test",
        ["content"] = new JsonObject { ["body"] = "hi" }, ["origin_server_ts"] = 1_765_000_000_000L, ["depth"] = 5L,
        ["prev_events"] = new JsonArray("$prev"), ["auth_events"] = new JsonArray("$create"),
        ["hashes"] = new JsonObject { ["sha256"] = "abc" }, ["signatures"] = new JsonObject(),
    }, Matrix.Federation.Rooms.RoomVersions.Find("11")!);

    [Fact]
    public void Written_fields_read_as_the_json_object_does()
    {
        var asObject = Sample(writeOnly: false);
        Assert.IsType<JsonObject>(asObject);
        Assert.True(asObject["limited"]!.GetValue<bool>());
        var written = Written(Sample(writeOnly: true));
        Assert.Equal(Written(asObject), written);
        Assert.StartsWith("""{"next_batch":"s5_\"quoted\"_café","rooms":{"join":{"!a:x":{"n":1}},"leave":{}},"limited":true,"count":42,"nothing":null,"events":[{"type":"m.typing"},3,"\u2028"],"empty":{},"shared":{"content":{"body":"hi"},""",
            written);
        Assert.EndsWith(""","unsigned":{"age":100,"transaction_id":"txn1"}}}""", written);
        Assert.True(JsonNode.DeepEquals(asObject, JsonNode.Parse(written)));
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// The objects of a /sync response that is only written out, kept as their fields and written straight from them: a
/// <see cref="JsonObject"/> takes 350 bytes with one property and 1.7 KB with eight, and a sync woken by a message
/// built some twenty of them. A response that is read again (the legacy <c>/events</c>) gets JSON objects.
/// </summary>
public static class WrittenObject
{
    private static readonly JsonTypeInfo<(string Key, JsonNode? Value)[]> FieldsInfo =
        (JsonTypeInfo<(string Key, JsonNode? Value)[]>)new JsonSerializerOptions
        {
            Converters = { new FieldsConverter() },
            TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        }.GetTypeInfo(typeof((string Key, JsonNode? Value)[]));

    // Nothing modifies a written value, so every written-only response shares these (a woken sync's response has a
    // dozen empty sections: invites, presence, to-device, a room's state and ephemeral events, ...).
    private static readonly JsonNode EmptyObject = JsonValue.Create(Array.Empty<(string, JsonNode?)>(), FieldsInfo)!;
    private static readonly JsonNode NoEvents = JsonValue.Create(new (string, JsonNode?)[] { ("events", new JsonArray()) }, FieldsInfo)!;

    public static JsonNode Of(bool writeOnly, params (string Key, JsonNode? Value)[] fields) =>
        writeOnly
            ? fields.Length == 0 ? EmptyObject : JsonValue.Create(fields, FieldsInfo)!
            : new JsonObject(fields.Select(f => KeyValuePair.Create(f.Key, f.Value)));

    /// <summary>An <c>{"events": [...]}</c> section.</summary>
    public static JsonNode Events(bool writeOnly, JsonArray events) =>
        writeOnly && events.Count == 0 ? NoEvents : Of(writeOnly, ("events", events));

    /// <summary>An array of strings (a room's heroes), kept as the list it is when only written.</summary>
    public static JsonNode Strings(bool writeOnly, IReadOnlyList<string> items) =>
        writeOnly ? JsonValue.Create(items, StringListInfo)! : new JsonArray(items.Select(i => (JsonNode)i).ToArray());

    private static readonly JsonTypeInfo<IReadOnlyList<string>> StringListInfo = (JsonTypeInfo<IReadOnlyList<string>>)new JsonSerializerOptions
    {
        Converters = { new StringListConverter() },
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
    }.GetTypeInfo(typeof(IReadOnlyList<string>));

    private sealed class StringListConverter : JsonConverter<IReadOnlyList<string>>
    {
        public override IReadOnlyList<string> Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            throw new NotSupportedException("a written array is not read back");

        public override void Write(Utf8JsonWriter writer, IReadOnlyList<string> value, JsonSerializerOptions options)
        {
            writer.WriteStartArray();
            for (var i = 0; i < value.Count; i++)
                writer.WriteStringValue(value[i]);
            writer.WriteEndArray();
        }
    }

    private sealed class FieldsConverter : JsonConverter<(string Key, JsonNode? Value)[]>
    {
        public override (string Key, JsonNode? Value)[] Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
            throw new NotSupportedException("a written object is not read back");

        public override void Write(Utf8JsonWriter writer, (string Key, JsonNode? Value)[] value, JsonSerializerOptions options)
        {
            writer.WriteStartObject();
            foreach (var (key, field) in value)
            {
                writer.WritePropertyName(key);
                if (field is null)
                    writer.WriteNullValue();
                else
                    // Without these options: a field that is itself a value of a custom type (a shared event) is
                    // written by its own converter, not looked up again in the options of this one.
                    field.WriteTo(writer);
            }
            writer.WriteEndObject();
        }
    }
}

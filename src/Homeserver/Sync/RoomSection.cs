using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Sync;

/// <summary>
/// One of a /sync response's <c>rooms</c> sections (join, invite, leave, knock): each room's object in the order added,
/// a room at most once. A list rather than a <see cref="JsonObject"/>, which makes its dictionary as soon as anything
/// asks how many rooms it has (three of them per woken sync, all empty).
/// </summary>
public sealed class RoomSection
{
    // Made by the first room added: most sections of a woken sync stay empty.
    private List<(string RoomId, JsonNode? Value)>? _rooms;

    public int Count => _rooms?.Count ?? 0;

    public bool Has(string roomId)
    {
        foreach (var (id, _) in _rooms ?? [])
            if (id == roomId)
                return true;
        return false;
    }

    public void Add(string roomId, JsonNode value) => (_rooms ??= []).Add((roomId, value));

    public JsonNode ToNode(bool writeOnly) => WrittenObject.Of(writeOnly, _rooms is null ? [] : [.. _rooms]);
}

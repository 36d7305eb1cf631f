using System.Text.Json;
using Matrix.Federation.Events;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Sync.SlidingSync;

/// <summary>
/// Which of a room's state a sliding sync returns. Clients send it as Synapse's list of <c>[type, state_key]</c> pairs
/// (<c>*</c> a wildcard on either side, <c>$ME</c> the user, <c>["m.room.member", "$LAZY"]</c> lazy members: with it a
/// wildcard type no longer matches member events) or as MSC4186's <c>{include, exclude, lazy_members}</c>. Configs of
/// several lists and subscriptions combine by keeping each apart (<see cref="Union"/>): a state event is returned when
/// any of them asks for it, so lazy members in one do not hide the members another asks for in full.
/// </summary>
public sealed class RequiredState
{
    private const string Me = "$ME";
    private const string Lazy = "$LAZY";
    private const string Member = "m.room.member";

    /// <summary>A type and state key; null matches any.</summary>
    private readonly record struct Selector(string? Type, string? Key)
    {
        public bool Matches(StateKey key, string userId, bool lazyMembers) =>
            (Type is null ? !(lazyMembers && key.Type == Member) : Type == key.Type)
            && (Key is null || Key == key.Key || (Key == Me && key.Key == userId));

        public override string ToString() => $"{Type ?? "*"}|{Key ?? "*"}";
    }

    private sealed record Part(IReadOnlyList<Selector> Include, IReadOnlyList<Selector> Exclude, bool LazyMembers)
    {
        public bool Matches(StateKey key, string userId) =>
            Include.Any(s => s.Matches(key, userId, LazyMembers)) && !Exclude.Any(s => s.Matches(key, userId, lazyMembers: false));

        public string Canonical => string.Join(",", Include.Select(s => s.ToString()).Order(StringComparer.Ordinal)) + ";"
            + string.Join(",", Exclude.Select(s => s.ToString()).Order(StringComparer.Ordinal)) + (LazyMembers ? ";lazy" : "");
    }

    private readonly IReadOnlyList<Part> _parts;

    private RequiredState(IReadOnlyList<Part> parts)
    {
        _parts = parts;
        Canonical = string.Join("\n", parts.Select(p => p.Canonical).Distinct().Order(StringComparer.Ordinal));
    }

    public static readonly RequiredState None = new([]);

    /// <summary>A text that two configs asking for the same state share.</summary>
    public string Canonical { get; }

    /// <summary>Whether the members of a timeline's senders (and of its member events' targets) come with it.</summary>
    public bool LazyMembers => _parts.Any(p => p.LazyMembers);

    public bool Matches(StateKey key, string userId) => _parts.Any(p => p.Matches(key, userId));

    public RequiredState Union(RequiredState other) =>
        ReferenceEquals(other, None) ? this : ReferenceEquals(this, None) ? other
        : new([.. _parts, .. other._parts.Where(p => !_parts.Any(q => q.Canonical == p.Canonical))]);

    public static RequiredState Parse(JsonElement? element)
    {
        switch (element)
        {
            case null or { ValueKind: JsonValueKind.Null }:
                return None;
            case { ValueKind: JsonValueKind.Array } pairs:
                return FromPairs(pairs);
            case { ValueKind: JsonValueKind.Object } request:
                return new([new Part(Selectors(request, "include"), Selectors(request, "exclude"), request.OptionalBool("lazy_members") ?? false)]);
            default:
                throw MatrixException.BadJson("'required_state' must be a list of [type, state_key] pairs or an object.");
        }
    }

    private static RequiredState FromPairs(JsonElement pairs)
    {
        var include = new List<Selector>();
        var lazy = false;
        foreach (var pair in pairs.EnumerateArray())
        {
            if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2 || pair.EnumerateArray().Any(p => p.ValueKind != JsonValueKind.String))
                throw MatrixException.BadJson("Each 'required_state' entry must be a [type, state_key] pair of strings.");
            var type = JsonFields.WithoutNul(pair[0].GetString()!, "required_state");
            var key = JsonFields.WithoutNul(pair[1].GetString()!, "required_state");
            if (key == Lazy)
                lazy |= type == Member;
            else
                include.Add(new Selector(type == "*" ? null : type, key == "*" ? null : key));
        }
        return new([new Part(include, [], lazy)]);
    }

    private static List<Selector> Selectors(JsonElement request, string name)
    {
        if (!request.TryGetProperty(name, out var list) || list.ValueKind == JsonValueKind.Null)
            return [];
        if (list.ValueKind != JsonValueKind.Array || list.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Object))
            throw MatrixException.BadJson($"'required_state.{name}' must be a list of objects.");
        return list.EnumerateArray().Select(e => new Selector(e.OptionalString("type"), e.OptionalString("state_key"))).ToList();
    }
}

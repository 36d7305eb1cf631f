using System.Text.Json.Nodes;

namespace Matrix.Homeserver.Push;

/// <summary>
/// A user's enabled push rules in priority order, compiled by <see cref="PushEvaluator.Compile"/>: an event in a room
/// of a thousand members is evaluated a thousand times, against rules that change rarely.
/// </summary>
public sealed class CompiledPushRules(IReadOnlyList<CompiledPushRules.Rule> rules, bool usesDisplayName)
{
    public sealed record Rule(Func<PushEventView, PushContext, bool> Matches, PushOutcome Outcome);

    /// <summary>Whether an enabled rule needs the user's display name (the deprecated <c>contains_display_name</c>).</summary>
    public bool UsesDisplayName => usesDisplayName;

    internal IReadOnlyList<Rule> Rules => rules;

    /// <summary>The first matching rule's outcome, or null when no rule matches (no notification).</summary>
    public PushOutcome? Evaluate(PushEventView ev, PushContext context)
    {
        foreach (var rule in rules)
            if (rule.Matches(ev, context))
                return rule.Outcome;
        return null;
    }
}

/// <summary>
/// An event as push rules look at it: each property path is looked up once however many users' rules ask for it.
/// Not thread-safe: one evaluation loop owns it.
/// </summary>
public sealed class PushEventView(JsonObject ev)
{
    private readonly Dictionary<string, string?> _texts = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _scalars = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>?> _arrays = new(StringComparer.Ordinal);

    /// <summary>The string at the path, or null when it is absent or not a string.</summary>
    public string? Text(string path)
    {
        if (!_texts.TryGetValue(path, out var text))
            _texts[path] = text = PushEvaluator.Property(ev, path) is JsonValue value && value.TryGetValue<string>(out var s) ? s : null;
        return text;
    }

    /// <summary>The canonical form of the scalar at the path (<c>null</c> for a JSON null), or null when absent or not a scalar.</summary>
    public string? Scalar(string path)
    {
        if (!_scalars.TryGetValue(path, out var scalar))
            _scalars[path] = scalar = PushEvaluator.TryProperty(ev, path, out var node) && PushEvaluator.IsScalar(node, out var canonical) ? canonical : null;
        return scalar;
    }

    /// <summary>The canonical forms of the scalars in the array at the path, or null when there is no array.</summary>
    public IReadOnlySet<string>? ArrayScalars(string path)
    {
        if (!_arrays.TryGetValue(path, out var scalars))
            _arrays[path] = scalars = PushEvaluator.Property(ev, path) is JsonArray array
                ? array.Select(item => PushEvaluator.IsScalar(item, out var canonical) ? canonical : null).OfType<string>().ToHashSet(StringComparer.Ordinal)
                : null;
        return scalars;
    }
}

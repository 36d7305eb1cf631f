using System.Text.RegularExpressions;

namespace Matrix.AppServices.Registration;

/// <summary>
/// One namespace entry of a registration: a regular expression over user IDs, room aliases or room IDs, and whether
/// the application service claims those exclusively. The expression must match from the start of the ID, as Synapse
/// matches it (bridges write patterns such as <c>@_irc_.*:example.org</c>).
/// </summary>
public sealed class Namespace(string pattern, bool exclusive)
{
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);
    private readonly Regex _regex = new("^(?:" + pattern + ")", RegexOptions.CultureInvariant, MatchTimeout);

    public string Pattern { get; } = pattern;
    public bool Exclusive { get; } = exclusive;

    public bool Matches(string id)
    {
        try
        {
            return _regex.IsMatch(id);
        }
        catch (RegexMatchTimeoutException)
        {
            return false;
        }
    }
}

/// <summary>The users, aliases and rooms namespaces of a registration.</summary>
public sealed record Namespaces(IReadOnlyList<Namespace> Users, IReadOnlyList<Namespace> Aliases, IReadOnlyList<Namespace> Rooms)
{
    public static readonly Namespaces None = new([], [], []);
}

using System.DirectoryServices.Protocols;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Matrix.AppServices.Ldap;

namespace Matrix.Bridges.Ldap;

/// <summary>A person of the directory as the bridge maps them; the photo is known by its SHA-256 (the bytes are read when needed).</summary>
public sealed record DirectoryPerson(string Dn, string Localpart, string? DisplayName, string? Department, bool Disabled, string? PhotoHash = null);

/// <summary>
/// The directory as one consistent read: every person (disabled ones flagged) and, per group, its people with nested
/// groups expanded. Built completely before anything is changed, so an unreachable directory changes nothing.
/// </summary>
public sealed record DirectorySnapshot(IReadOnlyDictionary<string, DirectoryPerson> PeopleByDn, IReadOnlyDictionary<string, IReadOnlySet<string>> GroupPeople)
{
    /// <summary>The enabled people of a group (nested groups included), by localpart; empty for an unknown group.</summary>
    public IEnumerable<DirectoryPerson> EnabledMembers(string groupDn) =>
        GroupPeople.TryGetValue(Normalise(groupDn), out var dns)
            ? dns.Select(dn => PeopleByDn[dn]).Where(p => !p.Disabled)
            : [];

    public static string Normalise(string dn) => string.Join(',', dn.Split(',').Select(part => part.Trim())).ToLowerInvariant();
}

public sealed class DirectoryUnavailableException(string message, Exception inner) : Exception(message, inner);

/// <summary>What the reconciliation reads from the directory.</summary>
public interface IDirectorySource
{
    DirectorySnapshot Read();

    /// <summary>The photo of the person at <paramref name="dn"/>, or null when they have none.</summary>
    byte[]? ReadPhoto(string dn);

    /// <summary>
    /// A digest of every person's and group's DN and change stamp (<c>modifyTimestamp</c>, AD <c>uSNChanged</c>): equal
    /// digests mean nothing was added, changed or deleted in between, so a run may be skipped.
    /// </summary>
    string Fingerprint();
}

/// <summary>Reads the directory with paged searches (RFC 2696) as the configured service account.</summary>
public sealed class DirectoryReader(LdapSyncConfig.DirectorySection config) : IDirectorySource
{
    public DirectorySnapshot Read() => WithConnection(connection =>
    {
        var disabled = config.DisabledFilter is { Length: > 0 } filter
            ? Search(connection, config.UserBaseDn, $"(&{config.UserFilter}{filter})", ["1.1"]).Select(e => DirectorySnapshot.Normalise(e.DistinguishedName)).ToHashSet()
            : [];
        var people = new Dictionary<string, DirectoryPerson>();
        var attributes = config.Attributes;
        string[] wanted = attributes.Photo is { Length: > 0 } photo
            ? [attributes.Localpart, attributes.DisplayName, attributes.Department, photo]
            : [attributes.Localpart, attributes.DisplayName, attributes.Department];
        foreach (var entry in Search(connection, config.UserBaseDn, config.UserFilter, wanted))
        {
            var localpart = First(entry, attributes.Localpart)?.ToLowerInvariant();
            if (localpart is null)
                continue;
            var dn = DirectorySnapshot.Normalise(entry.DistinguishedName);
            var photoHash = Photo(entry) is { } bytes ? Convert.ToHexStringLower(SHA256.HashData(bytes)) : null;
            people[dn] = new DirectoryPerson(dn, localpart, First(entry, attributes.DisplayName), First(entry, attributes.Department),
                disabled.Contains(dn), photoHash);
        }
        var directMembers = Search(connection, config.GroupBaseDn, config.GroupFilter, [config.MemberAttribute]).ToDictionary(
            e => DirectorySnapshot.Normalise(e.DistinguishedName),
            e => All(e, config.MemberAttribute).Select(DirectorySnapshot.Normalise).ToList());
        var groups = directMembers.Keys.ToDictionary(dn => dn, dn => (IReadOnlySet<string>)Expand(dn, directMembers, people));
        return new DirectorySnapshot(people, groups);
    });

    public byte[]? ReadPhoto(string dn) => config.Attributes.Photo is not { Length: > 0 } photo ? null : WithConnection(connection =>
    {
        var response = (SearchResponse)connection.SendRequest(new SearchRequest(dn, "(objectClass=*)", SearchScope.Base, photo));
        return response.Entries.Count == 0 ? null : Photo(response.Entries[0]);
    });

    public string Fingerprint() => WithConnection(connection =>
    {
        var lines = Search(connection, config.UserBaseDn, config.UserFilter, [config.ChangeAttribute])
            .Concat(Search(connection, config.GroupBaseDn, config.GroupFilter, [config.ChangeAttribute]))
            .Select(e => DirectorySnapshot.Normalise(e.DistinguishedName) + "\t" + First(e, config.ChangeAttribute))
            .Order(StringComparer.Ordinal);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var line in lines)
            hash.AppendData(Encoding.UTF8.GetBytes(line + "\n"));
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    });

    private T WithConnection<T>(Func<LdapConnection, T> read)
    {
        try
        {
            using var connection = LdapConnections.Open(config.Endpoint);
            connection.Bind(new NetworkCredential(config.BindDn, config.BindPassword));
            return read(connection);
        }
        catch (LdapException e) when (e.ErrorCode == LdapConnections.ClientTimeoutErrorCode)
        {
            throw new DirectoryUnavailableException($"the directory at {config.Uri} did not answer within {config.TimeoutMs} ms (directory.timeout_ms)", e);
        }
        catch (Exception e) when (e is LdapException or DirectoryOperationException)
        {
            throw new DirectoryUnavailableException($"the directory at {config.Uri} could not be read: {e.Message}", e);
        }
    }

    private byte[]? Photo(SearchResultEntry entry) =>
        config.Attributes.Photo is { Length: > 0 } photo && entry.Attributes.Contains(photo)
            ? entry.Attributes[photo].GetValues(typeof(byte[])).Cast<byte[]>().FirstOrDefault(b => b.Length > 0)
            : null;

    /// <summary>The people in a group and, recursively, in the groups it contains (each group once, whatever the cycles).</summary>
    private static HashSet<string> Expand(string group, Dictionary<string, List<string>> members, Dictionary<string, DirectoryPerson> people)
    {
        var found = new HashSet<string>();
        var seen = new HashSet<string> { group };
        var pending = new Stack<string>([group]);
        while (pending.TryPop(out var current))
            foreach (var member in members[current])
                if (people.ContainsKey(member))
                    found.Add(member);
                else if (members.ContainsKey(member) && seen.Add(member))
                    pending.Push(member);
        return found;
    }

    private IEnumerable<SearchResultEntry> Search(LdapConnection connection, string baseDn, string filter, string[] attributes)
    {
        var paging = new PageResultRequestControl(config.PageSize);
        var request = new SearchRequest(baseDn, filter, SearchScope.Subtree, attributes);
        request.Controls.Add(paging);
        while (true)
        {
            var response = (SearchResponse)connection.SendRequest(request);
            foreach (SearchResultEntry entry in response.Entries)
                yield return entry;
            var cookie = response.Controls.OfType<PageResultResponseControl>().FirstOrDefault()?.Cookie;
            if (cookie is not { Length: > 0 })
                yield break;
            paging.Cookie = cookie;
        }
    }

    private static string? First(SearchResultEntry entry, string attribute) => All(entry, attribute).FirstOrDefault();

    private static IEnumerable<string> All(SearchResultEntry entry, string attribute) =>
        entry.Attributes.Contains(attribute) ? entry.Attributes[attribute].GetValues(typeof(string)).Cast<string>() : [];
}

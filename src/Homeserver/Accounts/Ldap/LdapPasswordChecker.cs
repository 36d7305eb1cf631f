using System.DirectoryServices.Protocols;
using System.Net;
using Matrix.AppServices.Ldap;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts.Ldap;

/// <summary>A directory entry that proved its password: its DN and the attributes mapped to the Matrix account.</summary>
public sealed record DirectoryUser(string Dn, string Localpart, string? DisplayName, string? Mail);

/// <summary>The directory could not be asked (down, too slow, misconfigured): not the same as a wrong password.</summary>
public sealed class DirectoryUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Checks a login name and password against LDAP or Active Directory: search-then-bind with the service account
/// (the entry found by <c>user_filter</c>, minus <c>disabled_filter</c>, must be exactly one), or a direct bind
/// with <c>bind_dn_template</c>. Never waits longer than <c>timeout_ms</c> in all.
/// </summary>
public sealed class LdapPasswordChecker(HomeserverConfig config, ILogger<LdapPasswordChecker> logger)
{
    private const int InvalidCredentials = 49;
    private LdapConfig Ldap => config.Ldap;

    /// <summary>The entry, or null for a wrong password, an unknown or disabled name, or an unmappable entry.</summary>
    public async Task<DirectoryUser?> CheckAsync(string loginName, string password, CancellationToken ct)
    {
        // An empty password is an unauthenticated bind, which servers accept for any DN (RFC 4513 5.1.2).
        if (password.Length == 0 || loginName.Length == 0)
            return null;
        try
        {
            return await Task.Run(() => Check(loginName, password), ct).WaitAsync(TimeSpan.FromMilliseconds(Ldap.TimeoutMs), ct);
        }
        catch (TimeoutException)
        {
            logger.LogWarning("The directory at {Uri} did not answer within {Timeout} ms", Ldap.Uri, Ldap.TimeoutMs);
            throw new DirectoryUnavailableException("The login directory did not answer in time.");
        }
    }

    private DirectoryUser? Check(string loginName, string password)
    {
        var filter = UserFilter(loginName);
        try
        {
            using var connection = LdapConnections.Open(new LdapEndpoint(Ldap.Uri, Ldap.StartTls, Ldap.TlsCaFile, Ldap.TimeoutMs));
            if (Ldap.BindDn is not null)
            {
                BindServiceAccount(connection);
                var found = FindOne(connection, filter);
                return found is not null && BindsAs(connection, found.DistinguishedName, password) ? Map(found) : null;
            }
            var dn = Ldap.BindDnTemplate!.Replace("{username}", LdapConnections.EscapeDnValue(loginName));
            return BindsAs(connection, dn, password) && FindOne(connection, filter) is { } entry ? Map(entry) : null;
        }
        catch (LdapException e)
        {
            logger.LogWarning("The directory at {Uri} failed: {Code} {Message}", Ldap.Uri, e.ErrorCode, e.Message);
            throw new DirectoryUnavailableException("The login directory cannot be reached.", e);
        }
        catch (DirectoryOperationException e)
        {
            logger.LogWarning("The directory at {Uri} refused a search: {Message}", Ldap.Uri, e.Message);
            throw new DirectoryUnavailableException("The login directory refused the request.", e);
        }
    }

    private void BindServiceAccount(LdapConnection connection)
    {
        try
        {
            connection.Bind(new NetworkCredential(Ldap.BindDn, Ldap.BindPassword));
        }
        catch (LdapException e) when (e.ErrorCode == InvalidCredentials)
        {
            // A wrong service password is the operator's problem, never reported as the user's wrong password.
            logger.LogError("The directory refused the service account {BindDn}: check ldap.bind_password", Ldap.BindDn);
            throw new DirectoryUnavailableException("The login directory refused this server's credentials.", e);
        }
    }

    private static bool BindsAs(LdapConnection connection, string dn, string password)
    {
        try
        {
            connection.Bind(new NetworkCredential(dn, password));
            return true;
        }
        catch (LdapException e) when (e.ErrorCode == InvalidCredentials)
        {
            return false;
        }
    }

    private SearchResultEntry? FindOne(LdapConnection connection, string filter)
    {
        var attributes = new[] { Ldap.Attributes.Localpart, Ldap.Attributes.DisplayName, Ldap.Attributes.Mail };
        var response = (SearchResponse)connection.SendRequest(new SearchRequest(Ldap.BaseDn, filter, SearchScope.Subtree, attributes) { SizeLimit = 2 });
        if (response.Entries.Count == 1)
            return response.Entries[0];
        if (response.Entries.Count > 1)
            logger.LogWarning("The login filter matches several directory entries; refusing the login");
        return null;
    }

    private string UserFilter(string loginName)
    {
        var filter = Ldap.UserFilter.Replace("{username}", LdapConnections.EscapeFilterValue(loginName));
        return Ldap.DisabledFilter is { Length: > 0 } disabled ? $"(&{filter}(!{disabled}))" : filter;
    }

    private DirectoryUser? Map(SearchResultEntry entry)
    {
        var localpart = First(entry, Ldap.Attributes.Localpart)?.ToLowerInvariant();
        if (localpart is null || !UserId.IsValidNewLocalpart(localpart))
        {
            logger.LogWarning("Directory entry {Dn} has no usable '{Attribute}' for a Matrix localpart", entry.DistinguishedName, Ldap.Attributes.Localpart);
            return null;
        }
        return new DirectoryUser(entry.DistinguishedName, localpart, First(entry, Ldap.Attributes.DisplayName), First(entry, Ldap.Attributes.Mail));
    }

    private static string? First(SearchResultEntry entry, string attribute) =>
        entry.Attributes.Contains(attribute) && entry.Attributes[attribute].GetValues(typeof(string)) is [string value, ..] ? value : null;
}

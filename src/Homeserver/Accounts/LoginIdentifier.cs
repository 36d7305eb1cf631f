using System.Text.Json;
using Matrix.Federation.Identifiers;
using Matrix.Homeserver.Http;

namespace Matrix.Homeserver.Accounts;

/// <summary>Reads the user a login or password stage names: <c>identifier</c> of type <c>m.id.user</c>, or the deprecated <c>user</c> field.</summary>
public static class LoginIdentifier
{
    /// <summary>The name as typed, for a directory: the localpart of a full user ID of this server, else the whole name.</summary>
    public static string LoginName(JsonElement auth)
    {
        var user = auth.OptionalObject("identifier") is { } identifier ? identifier.RequiredString("user") : auth.OptionalString("user") ?? "";
        return user.StartsWith('@') && UserId.TryParse(user, out var parsed) ? parsed.Localpart : user;
    }

    /// <summary>
    /// The third-party identifier a login names: identifier type <c>m.id.thirdparty</c>, or the deprecated top-level
    /// <c>medium</c> and <c>address</c>; email addresses in their canonical form. Null when the login names a user.
    /// </summary>
    public static (string Medium, string Address)? ThirdParty(JsonElement auth)
    {
        string medium, address;
        if (auth.OptionalObject("identifier") is { } identifier)
        {
            if (identifier.OptionalString("type") != "m.id.thirdparty")
                return null;
            medium = identifier.RequiredString("medium");
            address = identifier.RequiredString("address");
        }
        else if (auth.OptionalString("medium") is { } topMedium && auth.OptionalString("user") is null)
        {
            medium = topMedium;
            address = auth.RequiredString("address");
        }
        else
            return null;
        return (medium, medium == "email" ? Email.MailAddresses.Canonicalise(address) ?? address : address);
    }

    /// <summary>The full user ID named, lower-cased as at registration; null when it cannot be a user of <paramref name="serverName"/>.</summary>
    public static string? UserFromAuth(JsonElement auth, string serverName)
    {
        string? user;
        if (auth.OptionalObject("identifier") is { } identifier)
        {
            var type = identifier.RequiredString("type");
            if (type != "m.id.user")
                throw new MatrixException(400, "M_UNKNOWN", $"Login identifier type '{type}' is not supported.");
            user = identifier.RequiredString("user");
        }
        else
        {
            user = auth.OptionalString("user") ?? throw MatrixException.MissingParam("identifier");
        }

        if (user.StartsWith('@'))
        {
            if (!UserId.TryParse(user, out var parsed) || parsed.Server.Value != serverName)
                return null;
            user = parsed.Localpart;
        }
        var localpart = user.ToLowerInvariant();
        return UserId.IsValidNewLocalpart(localpart) || localpart.All(c => c is >= '\x21' and <= '\x7E' and not ':')
            ? $"@{localpart}:{serverName}"
            : null;
    }
}

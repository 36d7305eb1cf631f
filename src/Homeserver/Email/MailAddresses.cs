using System.Diagnostics.CodeAnalysis;
using System.Net.Mail;

namespace Matrix.Homeserver.Email;

/// <summary>Email addresses as this server accepts them: one plain address, no display name, nothing that could break a header.</summary>
public static class MailAddresses
{
    public const int MaxLength = 254;

    /// <summary>
    /// The canonical form of an address a client sent, as Synapse's <c>canonicalise_email</c>: trimmed and lower-cased;
    /// null when it is not a single plain address.
    /// </summary>
    public static string? Canonicalise(string? input)
    {
        var address = input?.Trim().ToLowerInvariant();
        if (address is null || address.Length is 0 or > MaxLength || address.Any(c => char.IsControl(c) || c is '<' or '>' or ',' or ' ' or '"'))
            return null;
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1)
            return null;
        return MailAddress.TryCreate(address, out var parsed) && parsed.Address == address && parsed.DisplayName.Length == 0 ? address : null;
    }

    /// <summary>A From value: an address with an optional display name.</summary>
    public static bool TryParseFrom(string value, [NotNullWhen(true)] out MailAddress? from) =>
        MailAddress.TryCreate(value, out from) && !value.Any(char.IsControl);
}

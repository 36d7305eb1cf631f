using System.Security.Cryptography;
using System.Text;
using Matrix.Federation.Crypto;

namespace Matrix.Homeserver.Accounts;

public static class Secrets
{
    /// <summary>A new opaque token with 256 random bits, e.g. for access, refresh and login tokens.</summary>
    public static string NewToken(string prefix) => prefix + UnpaddedBase64.EncodeUrlSafe(RandomNumberGenerator.GetBytes(32));

    /// <summary>What the database keeps of a token: its SHA-256, so a leaked database does not leak live tokens.</summary>
    public static string Hash(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    /// <summary>A device ID in the style clients expect: ten upper-case letters.</summary>
    public static string NewDeviceId() => RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10);

    public static string NewSessionId() => RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 24);
}

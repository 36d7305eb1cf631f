using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Matrix.Federation.Crypto;

namespace Matrix.Homeserver.Accounts;

public static class Secrets
{
    /// <summary>A new opaque token with 256 random bits, e.g. for access, refresh and login tokens.</summary>
    public static string NewToken(string prefix) => prefix + UnpaddedBase64.EncodeUrlSafe(RandomNumberGenerator.GetBytes(32));

    /// <summary>What the database keeps of a token: its SHA-256, so a leaked database does not leak live tokens.</summary>
    public static string Hash(string token)
    {
        Span<char> hex = stackalloc char[HashLength];
        Hash(token, hex);
        return new string(hex);
    }

    /// <summary>The length of <see cref="Hash(string)"/>: a SHA-256 in lower-case hex.</summary>
    public const int HashLength = 2 * SHA256.HashSizeInBytes;

    /// <summary>The same into <paramref name="hex"/> (<see cref="HashLength"/> characters): a lookup by it allocates nothing.</summary>
    public static void Hash(string token, Span<char> hex)
    {
        // Hashed on every request: the token's UTF-8 and the digest stay on the stack (tokens are short; a long one is rented).
        const int OnStack = 512;
        var length = Encoding.UTF8.GetByteCount(token);
        var rented = length > OnStack ? ArrayPool<byte>.Shared.Rent(length) : null;
        Span<byte> utf8 = rented is null ? stackalloc byte[OnStack] : rented;
        Encoding.UTF8.GetBytes(token, utf8);
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(utf8[..length], digest);
        if (rented is not null)
            ArrayPool<byte>.Shared.Return(rented);
        Convert.TryToHexStringLower(digest, hex, out _);
    }

    /// <summary>A device ID in the style clients expect: ten upper-case letters.</summary>
    public static string NewDeviceId() => RandomNumberGenerator.GetString("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10);

    public static string NewSessionId() => RandomNumberGenerator.GetString("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 24);
}

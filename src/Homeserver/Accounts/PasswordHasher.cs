using System.Security.Cryptography;
using System.Text;
using Matrix.Federation.Crypto;
using Matrix.Homeserver.Config;

namespace Matrix.Homeserver.Accounts;

/// <summary>Argon2id password hashes through libsodium's crypto_pwhash_str, at the configured cost.</summary>
public sealed class PasswordHasher
{
    // Argon2id holds a large memory block per hash; bounding concurrency bounds memory under a login storm.
    private readonly SemaphoreSlim _slots = new(Math.Max(1, Environment.ProcessorCount), Math.Max(1, Environment.ProcessorCount));
    private readonly ulong _opsLimit;
    private readonly nuint _memLimit;

    public PasswordHasher(HomeserverConfig config)
    {
        LibSodium.EnsureInitialised();
        _opsLimit = (ulong)config.Auth.PasswordHashing.OpsLimit;
        _memLimit = (nuint)(config.Auth.PasswordHashing.MemLimitKib * 1024);
    }

    public async Task<string> HashAsync(string password, CancellationToken ct)
    {
        await _slots.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Hash(password), ct);
        }
        finally
        {
            _slots.Release();
        }
    }

    public async Task<bool> VerifyAsync(string password, string hash, CancellationToken ct)
    {
        await _slots.WaitAsync(ct);
        try
        {
            return await Task.Run(() => Verify(password, hash), ct);
        }
        finally
        {
            _slots.Release();
        }
    }

    public bool NeedsRehash(string hash) =>
        LibSodium.crypto_pwhash_str_needs_rehash(NullTerminated(hash), _opsLimit, _memLimit) != 0;

    private string Hash(string password)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        var output = new byte[LibSodium.PasswordHashStringBytes];
        try
        {
            if (LibSodium.crypto_pwhash_str(output, bytes, (ulong)bytes.Length, _opsLimit, _memLimit) != 0)
                throw new CryptographicException("crypto_pwhash_str failed (out of memory?)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
        return Encoding.ASCII.GetString(output, 0, Array.IndexOf(output, (byte)0));
    }

    private static bool Verify(string password, string hash)
    {
        var bytes = Encoding.UTF8.GetBytes(password);
        try
        {
            return LibSodium.crypto_pwhash_str_verify(NullTerminated(hash), bytes, (ulong)bytes.Length) == 0;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static byte[] NullTerminated(string hash)
    {
        var bytes = new byte[LibSodium.PasswordHashStringBytes];
        var length = Encoding.ASCII.GetBytes(hash.AsSpan(0, Math.Min(hash.Length, bytes.Length - 1)), bytes);
        bytes[length] = 0;
        return bytes;
    }
}

using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace Matrix.Bridges.Calendar;

/// <summary>
/// Encrypts calendar credentials at rest (AES-256-GCM) with a key kept in its own file, created on first use with
/// owner-only permissions, so the state file alone (a backup, a copied data folder) reveals no password.
/// </summary>
public sealed class CredentialVault
{
    private readonly byte[] _key;

    public CredentialVault(string keyFile)
    {
        if (File.Exists(keyFile))
        {
            _key = Convert.FromBase64String(File.ReadAllText(keyFile).Trim());
            if (_key.Length != 32)
                throw new InvalidDataException($"{keyFile} does not hold a 256-bit key");
            return;
        }
        _key = RandomNumberGenerator.GetBytes(32);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(keyFile))!);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var file = new FileStream(keyFile, options);
        file.Write(Encoding.ASCII.GetBytes(Convert.ToBase64String(_key)));
        file.Flush(flushToDisk: true);
    }

    public string Protect(NetworkCredential credential)
    {
        var plain = Encoding.UTF8.GetBytes(credential.UserName + "\n" + credential.Password);
        var nonce = RandomNumberGenerator.GetBytes(AesGcm.NonceByteSizes.MaxSize);
        var cipher = new byte[plain.Length];
        var tag = new byte[AesGcm.TagByteSizes.MaxSize];
        using (var aes = new AesGcm(_key, tag.Length))
            aes.Encrypt(nonce, plain, cipher, tag);
        return Convert.ToBase64String([.. nonce, .. tag, .. cipher]);
    }

    /// <summary>The credential, or an exception when the text was not made with this vault's key.</summary>
    public NetworkCredential Unprotect(string text)
    {
        var data = Convert.FromBase64String(text);
        var nonceSize = AesGcm.NonceByteSizes.MaxSize;
        var tagSize = AesGcm.TagByteSizes.MaxSize;
        var plain = new byte[data.Length - nonceSize - tagSize];
        using (var aes = new AesGcm(_key, tagSize))
            aes.Decrypt(data.AsSpan(0, nonceSize), data.AsSpan(nonceSize + tagSize), data.AsSpan(nonceSize, tagSize), plain);
        var parts = Encoding.UTF8.GetString(plain).Split('\n', 2);
        return new NetworkCredential(parts[0], parts.Length > 1 ? parts[1] : "");
    }
}

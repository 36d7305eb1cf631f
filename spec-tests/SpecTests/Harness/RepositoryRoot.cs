namespace Matrix.SpecTests.Harness;

public static class RepositoryRoot
{
    /// <summary>The checkout the tests were built from (the folder holding Homeserver.sln), or null when run elsewhere.</summary>
    public static DirectoryInfo? Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Homeserver.sln")))
            dir = dir.Parent;
        return dir;
    }
}

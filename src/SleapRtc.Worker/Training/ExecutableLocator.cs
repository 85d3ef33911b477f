namespace SleapRtc.Worker.Training;

/// <summary>Finds a tool the way the contract says: explicit path, then an environment variable, then PATH.</summary>
public static class ExecutableLocator
{
    /// <returns>The full path, or null when the tool is nowhere to be found.</returns>
    public static string? Find(string? explicitPath, string environmentVariable, string commandName) =>
        Search(explicitPath, environmentVariable, commandName).Path;

    /// <summary>Like <see cref="Find"/>, and says which place it looked in, for messages when the tool is missing or fails.</summary>
    public static ExecutableSearch Search(string? explicitPath, string environmentVariable, string commandName)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath)) return new(ExistingFile(explicitPath!), $"the path given, '{explicitPath}'");
        var fromEnvironment = Environment.GetEnvironmentVariable(environmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return new(ExistingFile(fromEnvironment!), $"{environmentVariable}='{fromEnvironment}'");
        return new(FindOnPath(commandName), $"{commandName} on PATH");
    }

    public static string? FindOnPath(string commandName)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        var extensions = OperatingSystem.IsWindows()
            ? (Environment.GetEnvironmentVariable("PATHEXT") ?? ".EXE;.CMD;.BAT").Split(';', StringSplitOptions.RemoveEmptyEntries)
            : new[] { "" };
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            foreach (var extension in extensions.Prepend(""))
            {
                var candidate = Path.Combine(directory, commandName + extension);
                if (File.Exists(candidate)) return Path.GetFullPath(candidate);
            }
        }
        return null;
    }

    private static string? ExistingFile(string path)
    {
        var expanded = Environment.ExpandEnvironmentVariables(path.Trim());
        if (File.Exists(expanded)) return Path.GetFullPath(expanded);
        // A bare command name ("nvidia-smi") given explicitly is looked up on PATH.
        return expanded.IndexOfAny(new[] { '/', '\\' }) < 0 ? FindOnPath(expanded) : null;
    }
}

/// <param name="Path">The full path found, or null.</param>
/// <param name="Tried">Where the search looked (the explicit path, the environment variable, or PATH).</param>
public sealed record ExecutableSearch(string? Path, string Tried);

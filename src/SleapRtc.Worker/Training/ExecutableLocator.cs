namespace SleapRtc.Worker.Training;

/// <summary>Finds a tool the way the contract says: explicit path, then an environment variable, then PATH.</summary>
public static class ExecutableLocator
{
    /// <returns>The full path, or null when the tool is nowhere to be found.</returns>
    public static string? Find(string? explicitPath, string environmentVariable, string commandName)
    {
        if (!string.IsNullOrWhiteSpace(explicitPath)) return ExistingFile(explicitPath!);
        var fromEnvironment = Environment.GetEnvironmentVariable(environmentVariable);
        if (!string.IsNullOrWhiteSpace(fromEnvironment)) return ExistingFile(fromEnvironment!);
        return FindOnPath(commandName);
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

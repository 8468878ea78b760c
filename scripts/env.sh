# Sourced by the scripts: picks the newest JDK present (Error Prone needs >= 21 to run; the code
# targets Java 17), and names the project root.
NODEMESH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${JAVA_HOME:-}" ]]; then
  for j in $(ls -d /usr/lib/jvm/temurin-*-jdk-amd64 /usr/lib/jvm/java-*-openjdk-amd64 2>/dev/null | sort -t- -k2 -n -r); do
    if [[ -x "$j/bin/javac" ]]; then JAVA_HOME="$j"; break; fi
  done
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"

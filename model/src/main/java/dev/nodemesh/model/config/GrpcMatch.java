package dev.nodemesh.model.config;

import com.google.re2j.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Gateway API's GRPCRoute method match as the path match the L7 router already evaluates: a gRPC
 * call is {@code POST /<package.Service>/<Method>}. Exact service and method is an Exact path;
 * service only is a PathPrefix (every method of the service, whole segments); method only, and
 * RegularExpression matches, are regular expressions over the whole path with {@code [^/]+} for the
 * missing part. Precedence then follows the HTTPRoute order (Exact, longest prefix, regex), which
 * keeps GRPCRoute's "longest service, then longest method" order for exact matches.
 */
public final class GrpcMatch {
  private GrpcMatch() {}

  /**
   * @param regex Gateway API's {@code type: RegularExpression} (else Exact)
   * @param service null or empty: any service
   * @param method null or empty: any method
   * @throws java.util.regex.PatternSyntaxException when a regular expression does not compile
   */
  public static TextMatch path(boolean regex, @Nullable String service, @Nullable String method) {
    boolean hasService = service != null && !service.isEmpty();
    boolean hasMethod = method != null && !method.isEmpty();
    if (!hasService && !hasMethod) {
      return TextMatch.pathPrefix("/");
    }
    if (!regex) {
      if (hasService && hasMethod) {
        return new TextMatch(TextMatch.Kind.EXACT, "", "/" + service + "/" + method);
      }
      if (hasService) {
        return new TextMatch(TextMatch.Kind.PATH_PREFIX, "", "/" + service);
      }
      return new TextMatch(
          TextMatch.Kind.REGULAR_EXPRESSION, "", "/[^/]+/" + Pattern.quote(method));
    }
    String s = hasService ? "(?:" + service + ")" : "[^/]+";
    String m = hasMethod ? "(?:" + method + ")" : "[^/]+";
    return new TextMatch(TextMatch.Kind.REGULAR_EXPRESSION, "", "/" + s + "/" + m);
  }
}

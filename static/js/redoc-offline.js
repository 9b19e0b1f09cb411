// Loaded before Redoc on the node's API docs page (templates/drf_spectacular/redoc.html).
// Redoc's sidebar shows Redocly's logo from cdn.redoc.ly, and offers no option
// to leave it out. The node's pages load nothing from another origin (and on a
// private network that host does not resolve), so that image gets no source:
// Redoc drops the logo when it fails to load, and the link text stays.
const OUTSIDE_LOGO = "https://cdn.redoc.ly/";
const setAttribute = Element.prototype.setAttribute;

Element.prototype.setAttribute = function setAttributeWithoutOutsideLogo(name, value) {
  if (this instanceof HTMLImageElement && name === "src" && String(value).startsWith(OUTSIDE_LOGO)) {
    return setAttribute.call(this, name, "");
  }
  return setAttribute.call(this, name, value);
};

const imageSource = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
Object.defineProperty(HTMLImageElement.prototype, "src", {
  ...imageSource,
  set(value) {
    imageSource.set.call(this, String(value).startsWith(OUTSIDE_LOGO) ? "" : value);
  },
});

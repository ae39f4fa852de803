"""What each resource asks Shopify for: the count, the bulk query and the paged queries. Pure.

Every query is validated against shopify_sync/schema/ by the tests' Admin API double. Page
sizes keep a page's requested cost under Shopify's 1,000-point bucket (a connection costs
2 + first x its node's cost; an object 1; a scalar 0), e.g. products: 2 + 25 x (1 + 2 + 10 x 2) = 577.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    resource: str
    root: str            # the top-level connection
    node_type: str       # its node's GraphQL type
    count: str           # the count query that gives the job's total
    fields: str          # the node's fields, without the child connection
    page_size: int
    child: str | None = None         # one nested connection, flattened into __parentId records
    child_fields: str = ""
    child_page_size: int = 0

    def bulk_query(self) -> str:
        """The query for ``bulkOperationRunQuery``: connections without ``first`` (bulk reads them all)."""
        child = f" {self.child} {{ edges {{ node {{ {self.child_fields} }} }} }}" if self.child else ""
        return f"{{ {self.root} {{ edges {{ node {{ {self.fields}{child} }} }} }} }}"

    def page_query(self) -> str:
        child = ""
        if self.child:
            child = (f" {self.child}(first: {self.child_page_size}) {{ pageInfo {{ hasNextPage endCursor }}"
                     f" nodes {{ {self.child_fields} }} }}")
        return (f"query {self.node_type}Page($first: Int!, $after: String) {{ {self.root}(first: $first, after: $after)"
                f" {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {self.fields}{child} }} }} }}")

    def children_query(self) -> str:
        """The rest of one node's child connection, when a page held only its first ``child_page_size``."""
        return (f"query {self.node_type}Children($id: ID!, $first: Int!, $after: String) {{ node(id: $id) {{"
                f" ... on {self.node_type} {{ {self.child}(first: $first, after: $after)"
                f" {{ pageInfo {{ hasNextPage endCursor }} nodes {{ {self.child_fields} }} }} }} }} }}")

    def count_query(self) -> str:
        return f"query {self.node_type}Count {{ {self.count}(limit: null) {{ count precision }} }}"


SPECS = {
    "products": Spec(
        resource="products", root="products", node_type="Product", count="productsCount",
        fields="id title handle vendor productType status updatedAt", page_size=25,
        child="variants", child_fields="id title price position sku inventoryItem { id tracked }",
        child_page_size=10,
    ),
    "inventory": Spec(
        resource="inventory", root="inventoryItems", node_type="InventoryItem", count="productVariantsCount",
        fields="id sku tracked variant { id }", page_size=20,
        child="inventoryLevels", child_fields='id location { id name } quantities(names: ["available"]) { name quantity }',
        child_page_size=10,
    ),
    "orders": Spec(
        resource="orders", root="orders", node_type="Order", count="ordersCount",
        fields=("id name email updatedAt cancelledAt closedAt displayFinancialStatus displayFulfillmentStatus"
                " totalPriceSet { shopMoney { amount currencyCode } }"
                " customer { id email firstName lastName phone }"),
        page_size=15,
        child="lineItems", child_fields="id title sku quantity originalUnitPriceSet { shopMoney { amount } } variant { id }",
        child_page_size=10,
    ),
    "customers": Spec(
        resource="customers", root="customers", node_type="Customer", count="customersCount",
        fields="id email firstName lastName phone updatedAt", page_size=100,
    ),
}
